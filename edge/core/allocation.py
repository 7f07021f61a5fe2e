"""THE allocation rule: who gets how much current, given the site's limits.

One call, ``allocate(tree, sessions, meter, now_s, state, cfg, site_limit)``,
turns the circuit tree, the live sessions and the grid meter into a current
limit per connector. It does no I/O; time and memory come in as arguments.

1. Capacity (alloc_capacity.capacities). The non-EV load per phase is the
   grid meter minus what the EVs draw (an EV that reports nothing is assumed
   to draw its last limit). The
   root's capacity per phase is its limit (lowered by an unexpired external
   site limit) minus the safety margin minus the non-EV load; a power limit
   becomes a limit on the sum of the phase currents. Without a fresh, valid
   meter reading the site is in fail-safe: the non-EV load is the configured
   worst case instead (only on the phases a meter cannot read, if it reads the
   others). Wallboxes that ignore our profiles take their maximum.
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
   c. Top-up: integer levels leave a few deciamps per constraint; they go to
      the stage's sessions in order, one deciamp each first, so no session stays
      below its demand while every limit on its path still has room (current
      left unused is given to others).
   Lower priorities only get what the higher ones leave: a prioritised session
   is held back only by its own demand or by a limit that is full.
4. Demand (alloc_capacity.demand): an EV that clearly draws less than its limit (by more than
   unused_headroom_da, after the limit has been in place for raise_holdoff_s)
   is given its draw plus that headroom; the rest goes to others. Only a
   sample taken after the car had raise_holdoff_s to follow its last raise
   counts (alloc_capacity: "Samples and limit changes").
5. Ramping (alloc_ramp): cuts are sent at once, raises are held back and
   stepped, small raises are not sent.
"""

import heapq

from edge.core.alloc_capacity import assumed_draw, capacities, demand, stale_draw
from edge.core.alloc_config import AllocConfig
from edge.core.alloc_inputs import read_live, read_meter, read_site_limit
from edge.core.alloc_ramp import NOT_LOOKED_UP, ramp_all
from edge.core.alloc_state import (
    FAILSAFE, NORMAL, AllocState, next_memo, order_key, phase_options,
)
from edge.core.circuits import FULL, ONE

_INF = 1 << 62
_FULL_ONLY = ((FULL, 0),)
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
    live = read_live(sessions, layout, now_s, notes)
    ext_da = read_site_limit(site_limit, now_s, notes)

    # One pass over the sessions: what the EVs draw (for the capacity), what each
    # wants, and where it stands in the order. This loop and the one after share()
    # run for every session every cycle: they are written for speed.
    targets = {}
    by_index = [None] * layout.n    # the targets again, by connector number, for ramping
    prev_by_index = [NOT_LOOKED_UP] * layout.n     # state.sent by connector number
    new_memos = {}
    # Sessions go to their place of the last cycle first (sorted almost for free), new
    # ones after them; the sort below decides.
    order = state.order
    if order is None or len(order[0]) != layout.n:
        order = ([-1] * layout.n, 0)
    last_place = order[0]
    placed = [None] * order[1]
    keyed = []
    fixed = []
    ev = [0, 0, 0]
    e0 = e1 = e2 = 0
    rotate = cfg.rotate_after_s
    get_memo = state.sessions.get
    get_sent = state.sent.get
    max_da = layout.max_da
    min_da = layout.min_da
    switch = layout.switch
    holdoff = cfg.raise_holdoff_s
    for i, key, sid, prio, started, drawn, controllable, drawn_at in live:
        rec = prev_by_index[i] = get_sent(key)
        # Freshness of samples: alloc_capacity, "Samples and limit changes".
        if drawn is not None:
            if rec is None or drawn_at is None or drawn_at >= rec.changed_s + holdoff:
                e0 += drawn[0]
                e1 += drawn[1]
                e2 += drawn[2]
            else:
                stale_draw(ev, layout, i, drawn, rec)
        elif controllable and rec is not None and rec.limit_da:
            if rec.phases == 3:
                # Sent for three phases: all site phases (alloc_capacity.assumed_draw).
                e0 += rec.limit_da
                e1 += rec.limit_da
                e2 += rec.limit_da
            else:
                assumed_draw(ev, layout, i, rec)
        memo = get_memo(key)
        if memo is not None and memo.session_id != sid:
            memo = None     # a new session on this connector starts afresh
        if not controllable:
            fixed.append(i)
            targets[key] = by_index[i] = (max_da[i], layout.phases[i])
            new_memos[key] = next_memo(memo, sid, FULL, True, now_s)
            continue
        hi = max_da[i]
        if memo is None:
            keyed.append((-prio, 3, started, started, key, [i, min_da[i], hi, prio,
                          phase_options(layout.specs[i], None, now_s, cfg) if switch[i] else _FULL_ONLY,
                          key, None, sid]))
            continue
        place = last_place[i]
        # A sample from before the car could follow its last raise would make it
        # look like it leaves current unused: not used for its demand.
        if drawn is not None and memo.run_since_s is not None and rec is not None and rec.limit_da \
                and (drawn_at is None or drawn_at >= rec.raised_s + holdoff):
            hi = demand(layout, i, drawn, memo, rec, now_s, cfg)
        run = memo.run_since_s
        if run is not None and (not rotate or now_s - run < rotate):
            cls = 0     # charging, not yet due to yield (alloc_state.order_key)
            rank = started
        else:
            cls, rank = order_key(memo, started, now_s, rotate)
        entry = (-prio, cls, rank, started, key, [i, min_da[i], hi, prio,
                 phase_options(layout.specs[i], memo, now_s, cfg) if switch[i] else _FULL_ONLY,
                 key, memo, sid])
        if place >= 0:
            placed[place] = entry
        else:
            keyed.append(entry)
    ev[0] += e0
    ev[1] += e1
    ev[2] += e2
    caps = capacities(layout, ev, grid_da, ext_da, cfg)
    # Wallboxes that ignore our profiles take their maximum on their path.
    paths = layout.path
    for i in fixed:
        hi = max_da[i]
        for k in paths[i][FULL]:
            caps[k] -= hi
    keyed = [e for e in placed if e is not None] + keyed
    keyed.sort()
    items = [t[5] for t in keyed]
    # Freed now rather than at the end: fewer live containers, fewer garbage
    # collector passes during the cycle.
    live = placed = keyed = None
    place = [-1] * layout.n
    j = 0
    for item in items:
        place[item[0]] = j
        j += 1
    overloaded = [p for p in range(3) if caps[layout.root_phase[p]] < 0]

    alloc, modes = share(layout, caps, items, cfg.phase_up_margin_da, place)

    paused = []
    one_phase = []
    phases = layout.phases
    for item, a, mode in zip(items, alloc, modes):
        i = item[0]
        key = item[5]
        memo = item[6]
        if mode is None:
            mode = memo.mode if memo is not None else FULL
            paused.append(key)
            targets[key] = by_index[i] = (0, 1 if mode == ONE else phases[i])
            if memo is None or memo.mode != mode or memo.run_since_s is not None:
                memo = next_memo(memo, item[7], mode, False, now_s)
        else:
            if mode == ONE:
                one_phase.append(key)
                targets[key] = by_index[i] = (a, 1)
            else:
                targets[key] = by_index[i] = (a, phases[i])
            if memo is None or memo.mode != mode or (memo.run_since_s is not None) != (a > 0):
                memo = next_memo(memo, item[7], mode, a > 0, now_s)
        new_memos[key] = memo

    limits, changed, sent = ramp_all(layout, by_index, state, now_s, cfg, prev_by_index)
    mode = NORMAL if reason is None else FAILSAFE
    since = state.mode_since_s if mode == state.mode and state.mode_since_s is not None else now_s
    new_state = AllocState(new_memos, sent, mode, reason, since, (place, len(items)))
    status = {"mode": mode, "reason": reason, "since_s": since, "paused": paused,
              "one_phase": one_phase, "overloaded": overloaded, "site_limit_da": ext_da,
              "notes": notes}
    return Allocation(limits, changed, targets, status, new_state)


def share(layout, caps, items, extra_da=None, ij=None):
    """The rule proper. ``items`` are ``[i, min_da, demand_da, priority, options, ...]``
    in admission order with priorities descending; ``options`` are the phase modes
    to try as ``(mode, extra_da)``; ``extra_da`` is the largest of those extras
    (found in ``items`` when not given). ``caps`` is what every constraint can
    still carry; it is used up in place, except the root's when the root cannot
    bind (then it is left out: Layout.paths_for). ``ij``, when given, is each
    connector's place in ``items`` (-1: none). Returns (allocation per item,
    0 when paused; mode per item, None when paused).
    """
    if extra_da is None:
        extra_da = 0
        for item in items:
            for _, extra in item[4]:
                if extra > extra_da:
                    extra_da = extra
    paths, exact = layout.paths_for(caps, extra_da)
    count = len(items)
    alloc = [0] * count
    modes = [None] * count
    st = [0] * count
    by = [-1] * count     # the constraint that stopped each session, -1: its demand
    if ij is None:
        ij = [-1] * layout.n
        for j in range(count):
            ij[items[j][0]] = j
    his = [item[2] for item in items]
    los = [item[1] for item in items]
    hi_of = _getter(his)
    alloc_of = _getter(alloc)
    start = 0
    while start < count:
        prio = items[start][3]
        end = start
        while end < count and items[end][3] == prio:
            end += 1
        _stage(layout.members, paths, exact, caps, items, start, end, alloc, modes, st, by, ij, his, los, hi_of)
        # Top up before the next priority, so a lower one never takes a rest a
        # higher one could still use; lowest allocation first (max-min fairness).
        which = _below_demand(caps, his, start, end, alloc, modes, by)
        which.sort(key=alloc_of)
        given = _top_up(paths, exact, caps, items, which, alloc, modes, 1)
        # Limits only fill up, so only those that got a deciamp can take more.
        _top_up(paths, exact, caps, items, given, alloc, modes, _INF)
        start = end
    return alloc, modes


def _getter(seq):
    # A sort key in C where the interpreter has one (MicroPython lists lack __getitem__).
    try:
        return seq.__getitem__
    except AttributeError:
        return lambda j: seq[j]


def _stage(members, paths, exact, caps, items, start, end, alloc, modes, st, by, ij, his, los, hi_of):
    R = list(caps)
    lo0 = min(los[start:end])
    admitted = []
    waits = []
    simple = not exact
    for j in range(start, end):
        item = items[j]
        lo = item[1]
        options = item[4]
        if options is _FULL_ONLY and lo == lo0 and simple:
            # The common case: all phases, the stage's lowest minimum, each constraint
            # once on the path. Check and take in one pass, undone if it does not fit.
            path = paths[item[0]][FULL]
            for k in path:
                c = caps[k]
                if c < lo:
                    for k2 in path:
                        if k2 == k:
                            break
                        caps[k2] += lo
                    break
                caps[k] = c - lo
            else:
                modes[j] = FULL
                admitted.append(j)
                st[j] = _ACTIVE
            continue
        i = item[0]
        fast = lo == lo0 and simple
        got = 0     # 1: fits, 2: fits and already taken from caps
        for mode, extra in options:
            path = paths[i][mode]
            need = lo + extra
            if need == 0 and len(options) > 1:
                need = 1    # a mode that leaves 0 A does not "fit" when another may not
            if fast and need == lo:
                # The common case: check and take in one pass, undone if it does not
                # fit (a path names each constraint once here).
                got = 2
                for k in path:
                    c = caps[k]
                    if c < lo:
                        for k2 in path:
                            if k2 == k:
                                break
                            caps[k2] += lo
                        got = 0
                        break
                    caps[k] = c - lo
                if got:
                    break
                continue
            if exact:
                fits = _fits_repeated(caps, path, need)
            else:
                fits = True
                for k in path:
                    if caps[k] < need:
                        fits = False
                        break
            if fits:
                got = 1
                break
        if not got:
            continue
        modes[j] = mode
        admitted.append(j)
        if got == 2:
            st[j] = _ACTIVE
        elif lo == lo0:
            st[j] = _ACTIVE
            for k in path:
                caps[k] -= lo
        else:
            waits.append(j)
            for k in path:
                caps[k] -= lo
                R[k] -= lo
    if not admitted:
        return
    # Every active session took lo0 from each constraint it passes (once per time it
    # passes), a waiting one as much from R too: so the count of active sessions
    # through k is what caps lost against R, in lo0 steps.
    if lo0 > 0:
        rate = [(r - c) // lo0 for r, c in zip(R, caps)]
    else:
        rate = [0] * len(caps)
        for j in admitted:
            if st[j] == _ACTIVE:
                for k in paths[items[j][0]][modes[j]]:
                    rate[k] += 1
    heap = [(R[k] // r, k) for k, r in enumerate(rate) if r]
    heapq.heapify(heap)
    admitted.sort(key=hi_of)
    waits.sort(key=lambda j: items[j][1])
    _rise(members, paths, exact, items, R, rate, heap, admitted, waits, alloc, modes, st, by, ij, his)
    caps[:] = R


def _rise(members, paths, exact, items, R, rate, heap, by_hi, waits, alloc, modes, st, by, ij, his_all):
    """Raise the level until every admitted session has stopped."""
    pc = 0
    pw = 0
    n_hi = len(by_hi)
    n_w = len(waits)
    his = [his_all[j] for j in by_hi]
    his.append(_INF)
    los = [items[j][1] for j in waits] + [_INF]
    heappush = heapq.heappush
    heappop = heapq.heappop
    while True:
        while pc < n_hi and st[by_hi[pc]] == _DONE:
            pc += 1
        ncap = his[pc]
        nj = los[pw]
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
            alloc[j] = ncap
            st[j] = _DONE
            for k in paths[items[j][0]][modes[j]]:
                R[k] -= ncap
                rate[k] -= 1
        else:
            # Constraint k is full at level nb: every session rising through it stops.
            k = heap[0][1]
            rest = R[k] - rate[k] * nb
            for mode in (FULL, ONE):
                for i in members[k][mode]:
                    j = ij[i]
                    if j >= 0 and st[j] == _ACTIVE and modes[j] == mode:
                        by[j] = k
                        path = paths[i][mode]
                        level = nb
                        if rest > 0:
                            if exact:
                                _stop(path, j, nb, k, his_all[j], R, rate, alloc, st, exact)
                                rest = R[k] - rate[k] * nb
                                continue
                            if his_all[j] > nb:
                                # _stop, inlined for the common case (each constraint
                                # once on the path): one deciamp of the rest if it fits.
                                for k2 in path:
                                    if R[k2] <= rate[k2] * nb:
                                        break
                                else:
                                    level = nb + 1
                        alloc[j] = level
                        st[j] = _DONE
                        for k2 in path:
                            R[k2] -= level
                            rate[k2] -= 1
                        if level != nb:
                            rest = R[k] - rate[k] * nb


def _stop(path, j, level, k, hi, R, rate, alloc, st, exact):
    """Session j stops at ``level`` on full constraint k, which still has a rounding
    rest (R[k] - rate[k] * level, less than rate[k]); what it takes is final on every
    limit it passes. It takes one deciamp of the rest if every other limit on its
    path has room for it too, before anyone still rising can. (The check keeps every
    limit's fill level at or above ``level``: heap entries stay at or below the truth.)"""
    if hi > level and not exact:
        # Each constraint once on the path: room for one more is R > rate * level.
        for k2 in path:
            if R[k2] <= rate[k2] * level:
                break
        else:
            level += 1
    elif hi > level:
        for k2 in path:
            R[k2] -= 1
        for k2 in path:
            if R[k2] < rate[k2] * level:
                for k3 in path:
                    R[k3] += 1
                break
        else:
            level += 1
            for k2 in path:
                R[k2] += 1
    alloc[j] = level
    st[j] = _DONE
    for k2 in path:
        R[k2] -= level
        rate[k2] -= 1


def _fits_repeated(caps, path, need):
    """Whether ``need`` fits on a path where a power limit appears once per phase."""
    if not _reserve(caps, path, need):
        return False
    for k in path:
        caps[k] += need
    return True


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


def _below_demand(caps, his, start, end, alloc, modes, by):
    """Admitted sessions below their demand whose stopping limit has room again."""
    out = []
    for j in range(start, end):
        if alloc[j] >= his[j] or modes[j] is None:
            continue
        k = by[j]
        if k >= 0 and caps[k] <= 0:
            continue     # what stopped it is still full: the common case
        out.append(j)
    return out


def _top_up(paths, exact, caps, items, which, alloc, modes, most):
    # Called with most=1 first, so a rest of a few deciamps is spread one by one
    # rather than all given to the first session; then without bound.
    # Returns the sessions that were given something.
    given = []
    for j in which:
        a = alloc[j]
        item = items[j]
        if a >= item[2]:
            continue
        path = paths[item[0]][modes[j]]
        h = item[2] - a
        if h > most:
            h = most
        for k in path:
            if caps[k] < h:
                h = caps[k]
                if h <= 0:
                    break
        if h > 0 and exact:
            # A power constraint appears once per phase: count its occurrences.
            seen = {}
            for k in path:
                seen[k] = seen.get(k, 0) + 1
            for k in seen:
                room = caps[k] // seen[k]
                if room < h:
                    h = room
        if h > 0:
            alloc[j] = a + h
            given.append(j)
            for k in path:
                caps[k] -= h
    return given
