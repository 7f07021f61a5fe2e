"""THE allocation rule: who gets how much current, given the site's limits.

One call, ``allocate(tree, sessions, meter, now_s, state, cfg, site_limit)``,
turns the circuit tree, the live sessions and the grid meter into a current
limit per connector. It does no I/O; time and memory come in as arguments.

1. Capacity (alloc_capacity.capacities). The non-EV load per phase is the
   grid meter minus what the EVs draw (an EV that reports nothing is assumed
   to draw its last limit); while cars may still be following a change, that
   is known only within a band, and last cycle's estimate is kept as long as
   it lies in it (alloc_capacity.non_ev_estimate). The
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
      also stops at its demand. One whose minimum is above the level joins when
      the level reaches it, or stays at its minimum if a limit on its path fills
      first. So a stage costs O((n + m) log m), not O(n^2).
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

from edge.core.alloc_capacity import (
    assumed_draw, capacities, demand, no_raises, non_ev_estimate, stale_draw,
)
from edge.core.alloc_config import AllocConfig
from edge.core.alloc_inputs import iter_live, read_meter, read_site_limit
from edge.core.alloc_ramp import ramp_all
from edge.core.alloc_state import (
    FAILSAFE, NORMAL, AllocState, next_memo, order_key, phase_options,
)
from edge.core.circuits import FULL, ONE

_INF = 1 << 62
_FULL_ONLY = ((FULL, 0),)
_ACTIVE = 1
_DONE = 2
_WAIT = 3     # admitted, its minimum above the level: joins when the level reaches it


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
    reasons() {key: reason} why every connector gets what it gets (alloc_reasons)
    """

    def __init__(self, limits, changed, targets, status, state, trace=None):
        self.limits = limits
        self.changed = changed
        self.targets = targets
        self.status = status
        self.state = state
        self._trace = trace
        self._reasons = None

    def reasons(self):
        """{key: reason dict} for every connector (alloc_reasons.explain). Built from
        what the cycle recorded while it allocated, on first request only: a cycle
        nobody looks at pays nothing for it."""
        if self._reasons is None:
            from edge.core.alloc_reasons import explain
            self._reasons = explain(self)
        return self._reasons


def allocate(tree, sessions, meter, now_s, state=None, cfg=None, site_limit=None):
    layout = tree.compile()
    if cfg is None:
        cfg = AllocConfig()
    if state is None:
        state = AllocState()
    notes = []
    grid_da, reason = read_meter(meter, now_s, cfg.meter_max_age_s)

    # One pass over the sessions: what the EVs draw (for the capacity), what each
    # wants, and where it stands in the order. This loop and the one after share()
    # run for every session every cycle: they are written for speed. What a session
    # needs is kept in columns by connector number, not in an object per session:
    # fewer objects made per cycle means fewer garbage-collector passes.
    n = layout.n
    keys = layout.keys
    prev_sent = list(map(state.sent.get, keys))
    hint = state.hint
    if hint is None or hint[0] is not layout:
        hint = (layout, [], [None] * n, bytearray(n), [None] * n)
    _, last_order, last_sort, in_last, last_targets = hint
    sort_key = list(last_sort)    # per connector: its place in the order, as a sort key
    dirty = False
    fresh = []
    present = bytearray(n)    # connectors with a session we control
    count = 0
    hi = list(layout.max_da)
    prio_of = [0] * n
    options_of = [_FULL_ONLY] * n
    memo_of = [None] * n
    sid_of = [None] * n
    by_index = list(layout.idle)
    targets = {}
    new_memos = {}
    fixed = []
    ev = [0, 0, 0]      # the least the EVs draw per site phase
    band = [0, 0, 0]    # how much more they may draw (changes not yet confirmed)
    e0 = e1 = e2 = 0
    rotate = cfg.rotate_after_s
    get_memo = state.sessions.get
    max_da = layout.max_da
    switch = layout.switch
    specs = layout.specs
    holdoff = cfg.raise_holdoff_s
    for i, _, sid, prio, started, drawn, controllable, drawn_at in iter_live(sessions, layout, now_s, notes):
        rec = prev_sent[i]
        key = keys[i]
        # Freshness of samples: alloc_capacity, "Samples and limit changes".
        if drawn is not None:
            if rec is None or drawn_at is None or drawn_at >= rec.changed_s + holdoff:
                e0 += drawn[0]
                e1 += drawn[1]
                e2 += drawn[2]
            else:
                stale_draw(ev, band, layout, i, drawn, rec, drawn_at, now_s, cfg)
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
        if memo is None:
            place = (-prio, 3, started, started, key)
            if switch[i]:
                options_of[i] = phase_options(specs[i], None, now_s, cfg)
        else:
            # A sample from before the car could follow its last raise would make it
            # look like it leaves current unused: not used for its demand.
            if drawn is not None and memo.run_since_s is not None and rec is not None and rec.limit_da \
                    and (drawn_at is None or drawn_at >= rec.raised_s + holdoff):
                hi[i] = demand(layout, i, drawn, memo, rec, now_s, cfg)
            run = memo.run_since_s
            if run is not None and (not rotate or now_s - run < rotate):
                # Charging, not yet due to yield (alloc_state.order_key).
                place = (-prio, 0, started, started, key)
            else:
                cls, rank = order_key(memo, started, now_s, rotate)
                place = (-prio, cls, rank, started, key)
            if switch[i]:
                options_of[i] = phase_options(specs[i], memo, now_s, cfg)
        if place != sort_key[i]:
            sort_key[i] = place
            dirty = True
        prio_of[i] = prio
        memo_of[i] = memo
        sid_of[i] = sid
        present[i] = 1
        count += 1
        if not in_last[i]:
            fresh.append(i)
    ev[0] += e0
    ev[1] += e1
    ev[2] += e2
    ext_da = read_site_limit(site_limit, now_s, notes)
    non_ev = None
    doubt = False
    if grid_da is not None:
        non_ev, doubt = non_ev_estimate(grid_da, ev, band, state.non_ev_da, cfg.non_ev_deadband_da)
    caps = capacities(layout, non_ev, ext_da, cfg)
    # Wallboxes that ignore our profiles take their maximum on their path.
    paths = layout.path
    for i in fixed:
        m = max_da[i]
        for k in paths[i][FULL]:
            caps[k] -= m
    if dirty or fresh or count != len(last_order):
        # Last cycle's order, less the sessions that left, plus the new ones: nearly
        # sorted, so sorting it again is cheap. Otherwise it is kept as it is.
        order = [i for i in last_order if present[i]]
        order.extend(fresh)
        order.sort(key=_getter(sort_key))
    else:
        order = last_order
    overloaded = [p for p in range(3) if caps[layout.root_phase[p]] < 0]

    by = [-1] * n
    why = [-1] * n
    alloc, modes = share(layout, caps, order, layout.min_da, hi, prio_of, options_of, cfg.phase_up_margin_da,
                         by, why)

    paused = []
    one_phase = []
    phases = layout.phases
    for i in order:
        key = keys[i]
        memo = memo_of[i]
        mode = modes[i]
        if mode is None:
            a = 0
            mode = memo.mode if memo is not None else FULL
            paused.append(key)
            ph = 1 if mode == ONE else phases[i]
            if memo is None or memo.mode != mode or memo.run_since_s is not None:
                memo = next_memo(memo, sid_of[i], mode, False, now_s)
        else:
            a = alloc[i]
            if mode == ONE:
                one_phase.append(key)
                ph = 1
            else:
                ph = phases[i]
            if memo is None or memo.mode != mode or (memo.run_since_s is not None) != (a > 0):
                memo = next_memo(memo, sid_of[i], mode, a > 0, now_s)
        # Last cycle's pair when it is the same: most are, and then nothing is made.
        t = last_targets[i]
        if t is None or t[0] != a or t[1] != ph:
            t = (a, ph)
        targets[key] = by_index[i] = t
        new_memos[key] = memo

    # While the estimate leans on unconfirmed changes, nothing more is raised on it.
    limits, changed, sent = ramp_all(layout, no_raises(by_index, prev_sent) if doubt else by_index,
                                     state, now_s, cfg, prev_sent)
    mode = NORMAL if reason is None else FAILSAFE
    since = state.mode_since_s if mode == state.mode and state.mode_since_s is not None else now_s
    new_state = AllocState(new_memos, sent, mode, reason, since,
                           (layout, order, sort_key, present, by_index),
                           None if non_ev is None else tuple(non_ev))
    status = {"mode": mode, "reason": reason, "since_s": since, "paused": paused,
              "one_phase": one_phase, "overloaded": overloaded, "site_limit_da": ext_da,
              "non_ev_da": non_ev, "notes": notes}
    # What the reasons are made of, if anyone asks (alloc_reasons.explain).
    trace = (layout, order, fixed, alloc, modes, hi, by, why, caps, grid_da, ext_da, cfg)
    return Allocation(limits, changed, targets, status, new_state, trace)


def share(layout, caps, order, lo, hi, prio, options, extra_da=None, by=None, why=None):
    """The rule proper, on columns by connector number. ``order`` is the connectors
    with a session, in admission order with priorities (``prio[i]``) descending;
    ``lo[i]`` and ``hi[i]`` are a session's minimum and demand, ``options[i]`` the
    phase modes to try as ``(mode, extra_da)``; ``extra_da`` is the largest of those
    extras (found in ``options`` when not given). ``caps`` is what every constraint
    can still carry; it is used up in place, except the root's when the root cannot
    bind (then it is left out: Layout.paths_for). Returns (allocation per connector,
    0 when paused or idle; mode per connector, None when paused or idle).

    ``by`` and ``why``, lists of n filled with -1 when given, record what held each
    session as the rule ran (alloc_reasons reads them): ``by[i]`` the constraint
    that stopped a rising session (-1: its demand), ``why[i]`` for a paused one
    2 * the constraint its minimum did not fit on, + 1 when a session of the same
    priority ahead of it in the order holds that constraint (rotation's turn).
    """
    if extra_da is None:
        extra_da = 0
        for i in order:
            for _, extra in options[i]:
                if extra > extra_da:
                    extra_da = extra
    paths, exact = layout.paths_for(caps, extra_da)
    n = layout.n
    count = len(order)
    alloc = [0] * n
    modes = [None] * n
    st = [0] * n
    if by is None:
        by = [-1] * n     # the constraint that stopped each session, -1: its demand
    if why is None:
        why = [-1] * n
    alloc_of = _getter(alloc)
    start = 0
    while start < count:
        p = prio[order[start]]
        end = start
        while end < count and prio[order[end]] == p:
            end += 1
        stage = order if start == 0 and end == count else order[start:end]
        _stage(layout.members, paths, exact, caps, stage, lo, hi, options, alloc, modes, st, by, why)
        # Top up before the next priority, so a lower one never takes a rest a
        # higher one could still use; lowest allocation first (max-min fairness).
        which = _below_demand(caps, stage, hi, alloc, modes, by)
        which.sort(key=alloc_of)
        given = _top_up(paths, exact, caps, which, hi, alloc, modes, 1)
        # Limits only fill up, so only those that got a deciamp can take more.
        _top_up(paths, exact, caps, given, hi, alloc, modes, _INF)
        start = end
    return alloc, modes


def _getter(seq):
    # A sort key in C where the interpreter has one (MicroPython lists lack __getitem__).
    try:
        return seq.__getitem__
    except AttributeError:
        return lambda j: seq[j]


def _stage(members, paths, exact, caps, stage, lo, hi, options, alloc, modes, st, by, why):
    R = list(caps)
    lo0 = min(map(_getter(lo), stage))
    admitted = []
    waits = []
    simple = not exact
    for i in stage:
        low = lo[i]
        opts = options[i]
        if opts is _FULL_ONLY and low == lo0 and simple:
            # The common case: all phases, the stage's lowest minimum, each constraint
            # once on the path. Check and take in one pass, undone if it does not fit.
            path = paths[i][FULL]
            for k in path:
                c = caps[k]
                if c < low:
                    for k2 in path:
                        if k2 == k:
                            break
                        caps[k2] += low
                    # Paused on k; R still holds k's capacity at the stage's start.
                    why[i] = 2 * k + (1 if R[k] > c else 0)
                    break
                caps[k] = c - low
            else:
                modes[i] = FULL
                admitted.append(i)
                st[i] = _ACTIVE
            continue
        fast = low == lo0 and simple
        got = 0     # 1: fits, 2: fits and already taken from caps
        for mode, extra in opts:
            path = paths[i][mode]
            need = low + extra
            if need == 0 and len(opts) > 1:
                need = 1    # a mode that leaves 0 A does not "fit" when another may not
            if fast and need == low:
                # The common case: check and take in one pass, undone if it does not
                # fit (a path names each constraint once here).
                got = 2
                for k in path:
                    c = caps[k]
                    if c < low:
                        for k2 in path:
                            if k2 == k:
                                break
                            caps[k2] += low
                        got = 0
                        why[i] = 2 * k + (1 if R[k] > c else 0)
                        break
                    caps[k] = c - low
                if got:
                    break
                continue
            if exact:
                fits = _fits_repeated(caps, path, need)
                if not fits:
                    k = _short(caps, path, need)
                    why[i] = 2 * k + (1 if R[k] > caps[k] else 0)
            else:
                fits = True
                for k in path:
                    if caps[k] < need:
                        fits = False
                        why[i] = 2 * k + (1 if R[k] > caps[k] else 0)
                        break
            if fits:
                got = 1
                break
        if not got:
            continue
        modes[i] = mode
        admitted.append(i)
        if got == 2:
            st[i] = _ACTIVE
        elif low == lo0:
            st[i] = _ACTIVE
            for k in path:
                caps[k] -= low
        else:
            waits.append(i)
            st[i] = _WAIT
            for k in path:
                caps[k] -= low
                R[k] -= low
    if not admitted:
        return
    # Every active session took lo0 from each constraint it passes (once per time it
    # passes), a waiting one as much from R too: so the count of active sessions
    # through k is what caps lost against R, in lo0 steps.
    if lo0 > 0:
        rate = [(r - c) // lo0 for r, c in zip(R, caps)]
    else:
        rate = [0] * len(caps)
        for i in admitted:
            if st[i] == _ACTIVE:
                for k in paths[i][modes[i]]:
                    rate[k] += 1
    # Fill levels as level * m + constraint, one int each: ordered as the pairs
    # would be, without an object per entry. The first ones go in a sorted list,
    # later ones in a heap: most constraints never fill (their sessions stop
    # elsewhere first), and passing one in a list costs less than a heap pop.
    m = len(caps)
    first = [R[k] // r * m + k for k, r in enumerate(rate) if r]
    first.sort()
    first.append(_INF * m)
    admitted.sort(key=_getter(hi))
    waits.sort(key=_getter(lo))
    _rise(members, paths, exact, R, rate, first, m, admitted, waits, lo, hi, alloc, modes, st, by)
    caps[:] = R


def _rise(members, paths, exact, R, rate, first, m, by_hi, waits, lo, hi, alloc, modes, st, by):
    """Raise the level until every admitted session has stopped."""
    pc = 0
    pw = 0
    n_hi = len(by_hi)
    n_w = len(waits)
    his = [hi[i] for i in by_hi]
    his.append(_INF)
    los = [lo[i] for i in waits]
    los.append(_INF)
    end = first[-1]    # both end with it, so neither runs out
    heap = [end]
    pf = 0
    k = 0    # always set by the search below
    heappush = heapq.heappush
    heappop = heapq.heappop
    while True:
        while pc < n_hi and st[by_hi[pc]] == _DONE:
            pc += 1
        while pw < n_w and st[waits[pw]] == _DONE:
            pw += 1     # held at its minimum by a limit that filled below it
        ncap = his[pc]
        nj = los[pw]
        if ncap == _INF and nj == _INF:
            return
        # The constraint that fills next: entries may be stale (a session through
        # it stopped, so it fills later, or not at all): those are put right first.
        while True:
            e = first[pf]
            h = heap[0]
            if h < e:
                e = h
                k = e % m
                r = rate[k]
                if r and R[k] // r * m + k == e:
                    break
                heappop(heap)
            elif e == end:
                r = 0     # nothing left that could fill
                break
            else:
                k = e % m
                r = rate[k]
                if r and R[k] // r * m + k == e:
                    break
                pf += 1
            if r:
                heappush(heap, R[k] // r * m + k)
        nb = e // m if r else _INF
        if nj <= ncap and nj <= nb:
            # A session with a higher minimum joins the rising level.
            i = waits[pw]
            pw += 1
            low = lo[i]
            st[i] = _ACTIVE
            for k2 in paths[i][modes[i]]:
                R[k2] += low
                rate[k2] += 1
                heappush(heap, R[k2] // rate[k2] * m + k2)
        elif ncap <= nb:
            i = by_hi[pc]
            pc += 1
            alloc[i] = ncap
            st[i] = _DONE
            for k2 in paths[i][modes[i]]:
                R[k2] -= ncap
                rate[k2] -= 1
        else:
            # Constraint k is full at level nb: every session rising through it stops.
            # One still waiting to join through it stays at its minimum (above nb): it
            # must not come in later and take the rounding rest, which then goes to
            # the sessions at the level first (the top-up, lowest first).
            rest = R[k] - rate[k] * nb
            for mode in (FULL, ONE):
                for i in members[k][mode]:
                    if st[i] == _WAIT and modes[i] == mode:
                        alloc[i] = lo[i]
                        st[i] = _DONE
                        by[i] = k
                    elif st[i] == _ACTIVE and modes[i] == mode:
                        by[i] = k
                        path = paths[i][mode]
                        level = nb
                        if rest > 0:
                            if exact:
                                _stop(path, i, nb, k, hi[i], R, rate, alloc, st, exact)
                                rest = R[k] - rate[k] * nb
                                continue
                            if hi[i] > nb:
                                # _stop, inlined for the common case (each constraint
                                # once on the path): one deciamp of the rest if it fits.
                                for k2 in path:
                                    if R[k2] <= rate[k2] * nb:
                                        break
                                else:
                                    level = nb + 1
                        alloc[i] = level
                        st[i] = _DONE
                        for k2 in path:
                            R[k2] -= level
                            rate[k2] -= 1
                        if level != nb:
                            rest = R[k] - rate[k] * nb


def _stop(path, i, level, k, hi, R, rate, alloc, st, exact):
    """Session i stops at ``level`` on full constraint k, which still has a rounding
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
    alloc[i] = level
    st[i] = _DONE
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


def _short(caps, path, need):
    """The first constraint on a path where ``need`` does not fit (a power limit
    counted once per phase it appears for); only asked after a refusal."""
    seen = {}
    for k in path:
        seen[k] = seen.get(k, 0) + 1
        if caps[k] < need * seen[k]:
            return k
    return path[0]


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


def _below_demand(caps, stage, hi, alloc, modes, by):
    """Admitted sessions below their demand whose stopping limit has room again."""
    out = []
    for i in stage:
        if alloc[i] >= hi[i] or modes[i] is None:
            continue
        k = by[i]
        if k >= 0 and caps[k] <= 0:
            continue     # what stopped it is still full: the common case
        out.append(i)
    return out


def _top_up(paths, exact, caps, which, hi, alloc, modes, most):
    # Called with most=1 first, so a rest of a few deciamps is spread one by one
    # rather than all given to the first session; then without bound.
    # Returns the sessions that were given something.
    given = []
    for i in which:
        a = alloc[i]
        if a >= hi[i]:
            continue
        path = paths[i][modes[i]]
        h = hi[i] - a
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
            alloc[i] = a + h
            given.append(i)
            for k in path:
                caps[k] -= h
    return given
