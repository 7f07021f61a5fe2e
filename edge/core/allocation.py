"""THE allocation rule: who gets how much current, given the site's limits.

One call, ``allocate(tree, sessions, meter, now_s, state, cfg, site_limit)``,
turns the circuit tree, the live sessions and the grid meter into a current
limit per connector. It does no I/O; time and memory come in as arguments.

1. Capacity. The non-EV load per phase is the grid meter minus what the EVs
   draw (an EV that reports nothing is assumed to draw its last limit). The
   root's capacity per phase is its limit (lowered by an unexpired external
   site limit) minus the safety margin minus the non-EV load; a power limit
   becomes a limit on the sum of the phase currents. Without a fresh, valid
   meter reading the site is in fail-safe: the non-EV load is the configured
   worst case instead. Wallboxes that ignore our profiles take their maximum.
2. Order. Sessions go by priority (highest first), then by the rotation order
   of alloc_state.order_key (charging sessions keep their place, the latest
   arrivals wait, and after rotate_after_s waiting sessions swap in).
3. Priority stages. For each priority, highest first:
   a. Admission: in order, a session is admitted if its minimum fits under
      every limit on every phase its current passes; a phase-switching
      connector may be admitted on one phase instead (alloc_state.phase_options).
      A session that does not fit gets 0 (paused): never a value between 0 and
      its minimum.
   b. Water-filling: all admitted sessions of the stage rise together at one
      level L (each gets L clamped to its minimum and its demand). Every
      constraint k has R[k] (what it can still give to the rising sessions) and
      rate[k] (how many rising sessions pass it, a power limit counting each
      phase), so it fills up at L = R[k] // rate[k]. A heap yields the constraint
      that fills next; its sessions stop there, the others rise on. A session
      also stops at its demand. So a stage costs O((n + m) log m), not O(n^2).
   Lower priorities only get what the higher ones leave: a prioritised session
   is held back only by its own demand or by a limit that is full.
   c. Top-up: integer levels leave a few deciamps per constraint; they go to the
   stage's sessions in order, so no session stays below its demand while every limit on
   its path still has room (unused current is given to others).
5. Demand: an EV that clearly draws less than its limit (by more than
   unused_headroom_da, after the limit has been in place for raise_holdoff_s)
   is given its draw plus that headroom; the rest goes to others.
6. Ramping (alloc_ramp): cuts are sent at once, raises are held back and
   stepped, small raises are not sent.
"""

import heapq

from edge.core.alloc_config import AllocConfig
from edge.core.alloc_inputs import read_meter, read_sessions, read_site_limit
from edge.core.alloc_ramp import ramp
from edge.core.alloc_state import (
    FAILSAFE, NORMAL, AllocState, memo_for, next_memo, order_key, phase_options,
)
from edge.core.circuits import FULL, ONE

_INF = 1 << 62
_ACTIVE = 1
_DONE = 2


class Allocation:
    """Result of one cycle.

    limits   {key: (limit_da, phases)} for every connector (idle ones 0): what to
             apply, ramped
    changed  the part of ``limits`` that differs from what was last sent
    targets  {key: (limit_da, phases)} before ramping (what the rule decided)
    status   {"mode": "normal"|"failsafe", "reason": None|code, "since_s",
              "paused": [keys], "one_phase": [keys], "overloaded": [site phases],
              "site_limit_da": int|None, "notes": [texts about bad inputs]}
    state    the AllocState to pass to the next cycle
    """

    def __init__(self, limits, changed, targets, status, state):
        self.limits = limits
        self.changed = changed
        self.targets = targets
        self.status = status
        self.state = state


def allocate(tree, sessions, meter, now_s, state=None, cfg=None, site_limit=None):
    layout = tree.compile()
    if cfg is None:
        cfg = AllocConfig()
    if state is None:
        state = AllocState()
    notes = []
    grid_da, reason = read_meter(meter, now_s, cfg.meter_max_age_s)
    live = read_sessions(sessions, layout, now_s, notes)
    ext_da = read_site_limit(site_limit, now_s, notes)
    memos = [memo_for(state, s.key, s.session_id) for s in live]
    caps = _capacities(layout, live, memos, state, grid_da, ext_da, cfg)

    targets = {}
    new_memos = {}
    items = []
    keyed = []
    for n, s in enumerate(live):
        spec = layout.specs[s.i]
        if not s.controllable:
            for k in layout.path[s.i][FULL]:
                caps[k] -= spec.max_da
            targets[s.key] = (spec.max_da, spec.phases)
            new_memos[s.key] = next_memo(memos[n], s.session_id, FULL, True, now_s)
            continue
        memo = memos[n]
        hi = _demand(layout, s, memo, state, now_s, cfg)
        item = [s.i, spec.min_da, hi, s.priority, phase_options(spec, memo, now_s, cfg), n]
        keyed.append(((-s.priority,) + order_key(memo, s.started_s, now_s, cfg.rotate_after_s)
                      + (s.started_s, s.key), item))
    keyed.sort()
    for _, item in keyed:
        items.append(item)
    overloaded = [p for p in range(3) if caps[layout.root_phase[p]] < 0]

    alloc, modes = share(layout, caps, items)

    paused = []
    one_phase = []
    for j, item in enumerate(items):
        s = live[item[5]]
        spec = layout.specs[s.i]
        memo = memos[item[5]]
        mode = modes[j]
        if mode is None:
            mode = memo.mode if memo is not None else FULL
            paused.append(s.key)
        elif mode == ONE:
            one_phase.append(s.key)
        phases = 1 if mode == ONE else spec.phases
        targets[s.key] = (alloc[j], phases)
        new_memos[s.key] = next_memo(memo, s.session_id, mode, alloc[j] > 0, now_s)

    limits, changed, sent = _ramp_all(layout, targets, state, now_s, cfg)
    mode = FAILSAFE if grid_da is None else NORMAL
    since = state.mode_since_s if mode == state.mode and state.mode_since_s is not None else now_s
    new_state = AllocState(new_memos, sent, mode, reason, since)
    status = {"mode": mode, "reason": reason, "since_s": since, "paused": paused,
              "one_phase": one_phase, "overloaded": overloaded, "site_limit_da": ext_da,
              "notes": notes}
    return Allocation(limits, changed, targets, status, new_state)


def _capacities(layout, live, memos, state, grid_da, ext_da, cfg):
    root = layout.root
    if grid_da is not None:
        ev = [0, 0, 0]
        for n, s in enumerate(live):
            d = s.drawn_da
            if d is not None:
                ev[0] += d[0]
                ev[1] += d[1]
                ev[2] += d[2]
            elif s.controllable:
                # Unknown draw: assume the limit it has. (An uncontrollable one is
                # assumed to draw nothing here, so its current is never counted twice
                # in our favour; its maximum is reserved below anyway.)
                lim = state.sent_limit(s.key)
                if lim:
                    for p in _loaded(layout.specs[s.i], memos[n]):
                        ev[p] += lim
        non_ev = [grid_da[p] - ev[p] if grid_da[p] > ev[p] else 0 for p in range(3)]
    elif cfg.failsafe_non_ev_da is not None:
        non_ev = list(cfg.failsafe_non_ev_da)
    else:
        non_ev = [root.max_da[p] - root.margin_da for p in range(3)]
    caps = list(layout.cap)
    for p in range(3):
        lim = root.max_da[p]
        if ext_da is not None and ext_da < lim:
            lim = ext_da
        caps[layout.root_phase[p]] = lim - root.margin_da - non_ev[p]
    if layout.root_sum is not None:
        k = layout.root_sum
        caps[k] = layout.cap[k] - 3 * root.margin_da - non_ev[0] - non_ev[1] - non_ev[2]
    return caps


def _loaded(spec, memo):
    if memo is not None and memo.mode == ONE:
        return spec.wiring[:1]
    return spec.wiring


def _demand(layout, s, memo, state, now_s, cfg):
    """The most this session should get: its maximum unless it clearly uses less."""
    spec = layout.specs[s.i]
    lo = spec.min_da
    hi = spec.max_da
    sent = state.sent.get(s.key)
    if memo is None or memo.run_since_s is None or sent is None or sent.limit_da <= 0:
        return hi
    if sent.phases != (1 if memo.mode == ONE else spec.phases):
        return hi
    lim = sent.limit_da
    if now_s - sent.changed_s < cfg.raise_holdoff_s:
        # The car has not had time to follow its last limit: judge it later.
        return _clamp(lim, lo, hi)
    if s.drawn_da is None:
        return hi
    d = 0
    for p in _loaded(spec, memo):
        if s.drawn_da[p] > d:
            d = s.drawn_da[p]
    head = cfg.unused_headroom_da
    if d + head < lim:
        return _clamp(d + head, lo, hi)
    if d + head // 2 >= lim:
        return hi
    return _clamp(lim, lo, hi)


def _clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


def _ramp_all(layout, targets, state, now_s, cfg):
    limits = {}
    changed = {}
    sent = {}
    old = state.sent
    for i, key in enumerate(layout.keys):
        spec = layout.specs[i]
        t = targets.get(key)
        if t is None:
            t = (0, spec.phases)
        prev = old.get(key)
        value, rec = ramp(t[0], t[1], prev, spec.min_da, now_s, cfg)
        limits[key] = (value, t[1])
        sent[key] = rec
        if rec is not prev:
            changed[key] = (value, t[1])
    return limits, changed, sent


def share(layout, caps, items):
    """The rule proper. ``items`` are ``[i, min_da, demand_da, priority, options, ...]``
    in admission order with priorities descending; ``options`` are the phase modes
    to try as ``(mode, extra_da)``. ``caps`` is what every constraint can still
    carry; it is used up in place. Returns (allocation per item, 0 when paused;
    mode per item, None when paused).
    """
    count = len(items)
    alloc = [0] * count
    modes = [None] * count
    st = [0] * count
    ij = [-1] * layout.n
    for j in range(count):
        ij[items[j][0]] = j
    start = 0
    while start < count:
        prio = items[start][3]
        end = start
        while end < count and items[end][3] == prio:
            end += 1
        _stage(layout, caps, items, start, end, alloc, modes, st, ij)
        # Top up before the next priority, so a lower one never takes a rest a
        # higher one could still use.
        _top_up(layout, caps, items, start, end, alloc, modes)
        start = end
    return alloc, modes


def _stage(layout, caps, items, start, end, alloc, modes, st, ij):
    paths = layout.path
    R = list(caps)
    rate = [0] * len(caps)
    lo0 = _INF
    for j in range(start, end):
        if items[j][1] < lo0:
            lo0 = items[j][1]
    admitted = []
    waits = []
    for j in range(start, end):
        item = items[j]
        i = item[0]
        lo = item[1]
        for mode, extra in item[4]:
            path = paths[i][mode]
            if _reserve(caps, path, lo + extra):
                if extra:
                    for k in path:
                        caps[k] += extra
                modes[j] = mode
                break
        else:
            continue
        admitted.append(j)
        if lo == lo0:
            st[j] = _ACTIVE
            for k in path:
                rate[k] += 1
        else:
            waits.append(j)
            for k in path:
                R[k] -= lo
    if not admitted:
        return
    heap = [(R[k] // rate[k], k) for k in range(len(rate)) if rate[k]]
    heapq.heapify(heap)
    by_hi = sorted(admitted, key=lambda j: items[j][2])
    waits.sort(key=lambda j: items[j][1])
    _rise(layout, items, R, rate, heap, by_hi, waits, alloc, modes, st, ij)
    caps[:] = R


def _rise(layout, items, R, rate, heap, by_hi, waits, alloc, modes, st, ij):
    paths = layout.path
    members = layout.members
    pc = 0
    pw = 0
    n_hi = len(by_hi)
    n_w = len(waits)
    heappush = heapq.heappush
    heappop = heapq.heappop
    while True:
        while pc < n_hi and st[by_hi[pc]] == _DONE:
            pc += 1
        ncap = items[by_hi[pc]][2] if pc < n_hi else _INF
        nj = items[waits[pw]][1] if pw < n_w else _INF
        if ncap == _INF and nj == _INF:
            return
        nb = _INF
        while heap:
            lk, k = heap[0]
            r = rate[k]
            if r == 0:
                heappop(heap)
                continue
            t = R[k] // r
            if t != lk:
                heappop(heap)
                heappush(heap, (t, k))
                continue
            nb = lk
            break
        if nj <= ncap and nj <= nb:
            # A session with a higher minimum joins the rising level.
            j = waits[pw]
            pw += 1
            lo = items[j][1]
            st[j] = _ACTIVE
            for k in paths[items[j][0]][modes[j]]:
                R[k] += lo
                rate[k] += 1
                heappush(heap, (R[k] // rate[k], k))
        elif ncap <= nb:
            j = by_hi[pc]
            pc += 1
            _freeze(paths[items[j][0]][modes[j]], j, ncap, R, rate, alloc, st)
        else:
            # Constraint k is full at level nb: every session rising through it stops.
            k = heap[0][1]
            for mode in (FULL, ONE):
                for i in members[k][mode]:
                    j = ij[i]
                    if j >= 0 and st[j] == _ACTIVE and modes[j] == mode:
                        _freeze(paths[i][mode], j, nb, R, rate, alloc, st)


def _freeze(path, j, level, R, rate, alloc, st):
    alloc[j] = level
    st[j] = _DONE
    for k in path:
        R[k] -= level
        rate[k] -= 1


def _reserve(caps, path, need):
    n = len(path)
    x = 0
    while x < n:
        k = path[x]
        r = caps[k] - need
        if r < 0:
            break
        caps[k] = r
        x += 1
    if x == n:
        return True
    while x > 0:
        x -= 1
        caps[path[x]] += need
    return False


def _top_up(layout, caps, items, start, end, alloc, modes):
    paths = layout.path
    for j in range(start, end):
        a = alloc[j]
        item = items[j]
        if a == 0 or a >= item[2]:
            continue
        path = paths[item[0]][modes[j]]
        h = item[2] - a
        # A power constraint appears once per phase: count its occurrences.
        seen = {}
        for k in path:
            seen[k] = seen.get(k, 0) + 1
        for k in seen:
            room = caps[k] // seen[k]
            if room < h:
                h = room
                if h <= 0:
                    break
        if h > 0:
            alloc[j] = a + h
            for k in path:
                caps[k] -= h
