"""What there is to share and what each session wants (steps 1 and 4 of the rule
in allocation.py).

Capacity: the root's limit per phase (lowered by an external cap) minus the safety
margin minus the non-EV load, which is the grid meter minus what the EVs draw; in
fail-safe the configured worst case. Demand: a session's maximum, unless its car
clearly leaves current unused.

Samples and limit changes. A car's sample (drawn_da, taken at drawn_at_s) only
shows how the car follows its limit if the car had raise_holdoff_s to follow it:
- Demand: a sample counts if taken at or after the connector's last raise (or
  phase change) plus raise_holdoff_s. One from before a raise would make a car
  that was just raised look like it leaves current unused and cut it back. Cuts
  since then do not make it stale: the car was shown drawing that little under a
  higher limit, and it still does under a lower one. A sample that does not
  count is treated like no sample: the car wants its maximum.
- Non-EV load: a sample taken before the last change plus raise_holdoff_s may be
  from before a change the car has not followed yet, or had not when the meter
  read, or had half followed. It counts at most min(sample, limit in force) per
  phase, only on the phases that limit was sent for; what the car may draw on
  top of that is its band (below).
A sample without a time is taken to be current, as it always was.

The non-EV estimate. What the EVs draw is so known only within a band [lo, hi]
per phase, and the non-EV load, grid minus EVs, lies in [grid - hi, grid - lo].
The estimate is last cycle's, moved only as far as the evidence forces it:
up to grid - hi when it is below, down to grid - lo when it is above that by
non_ev_deadband_da or more (noise that moved the estimate down and up again
would hand every car's rounding deciamp to another car each second). So a car raised a moment ago that now draws its new
limit is not taken for new building load (which cut it again a second later,
and raised it when its next sample came: on a site at its limit every car went
up and down every ~10 s), and neither is a car that has not followed a cut yet
(which cut everyone a second time). The band of a raise lasts until a sample
taken raise_holdoff_s after it comes, or raise_holdoff_s + sample_wait_s (a
wallbox that confirms nothing loses it: the rise counts as other load again);
the band of a cut lasts raise_holdoff_s (a car follows a cut within seconds).
Safety: the estimate is never below grid - hi, so a rise of other load shows at
once beyond what the changes in flight could explain; the part they could
explain (at most the sum of |limit - sample| of the cars not yet confirmed) is
seen when the bands close. While the
estimate is below grid - lo (it leans on changes not yet confirmed), running
limits are not raised (no_raises), so that wait is never prolonged: a hidden rise
is cut at most raise_holdoff_s + one sample interval after the change that hid
it. Without a last estimate (the first cycle, after fail-safe) it starts at
grid - lo, the highest.
"""

from edge.core.circuits import ONE

_INF = 1 << 62


# The freshness tests themselves are inlined in allocation.allocate (they run for
# every session every cycle):
#   demand:  drawn_at_s is None or drawn_at_s >= sent.raised_s + raise_holdoff_s
#   draw:    sent is None or drawn_at_s is None or drawn_at_s >= sent.changed_s + raise_holdoff_s
# A fresh sample counts as drawn; the two functions below cover the rest.


def stale_draw(ev, band, layout, i, drawn, sent, drawn_at, now_s, cfg):
    """Add to ``ev`` (per site phase) the least connector i's car may draw when its
    sample is older than its last change (at most the sample and at most the limit
    in force, only on the phases that limit was sent for), and to ``band`` how much
    more it may draw ("The non-EV estimate" above):
    - up to its limit, when the sample predates its last raise plus the hold-off,
      until raise_holdoff_s + sample_wait_s after that raise (by then its wallbox
      should have confirmed: without a sample the rise counts as other load);
    - up to its sample, above a cut or on phases it was switched off, for
      raise_holdoff_s after that change (a car follows a cut within seconds; one
      still drawing more after that is other load to us, the safe side)."""
    wiring = layout.specs[i].wiring
    lim = sent.limit_da
    hold = cfg.raise_holdoff_s
    cutting = now_s < sent.changed_s + hold
    raising = drawn_at < sent.raised_s + hold and now_s < sent.raised_s + hold + cfg.sample_wait_s
    on = wiring[:1] if sent.phases == 1 else wiring
    for p in on:
        d = drawn[p]
        if d < lim:
            ev[p] += d
            if raising:
                band[p] += lim - d
        else:
            ev[p] += lim
            if cutting:
                band[p] += d - lim
    if cutting and len(on) < len(wiring):
        for p in wiring[1:]:
            band[p] += drawn[p]


def non_ev_estimate(grid_da, ev, band, prev, dead_da):
    """(the non-EV load per site phase, None where the meter has no value; whether
    it is below what the confirmed samples alone say on some phase) from the grid
    reading, the least the EVs draw (``ev``), how much more they may draw (``band``)
    and last cycle's estimate ``prev`` (a tuple, or None), which goes down only
    by ``dead_da`` or more: see "The non-EV estimate" above."""
    out = [None, None, None]
    doubt = False
    for p in range(3):
        g = grid_da[p]
        if g is None:
            continue
        high = g - ev[p]
        if high < 0:
            high = 0
        low = high - band[p]
        if low < 0:
            low = 0
        last = prev[p] if prev is not None else None
        if last is None or last - high >= dead_da or (last > high and dead_da == 0):
            out[p] = high
        elif last < low:
            out[p] = low
        else:
            out[p] = last
        if out[p] < high:
            doubt = True
    return out, doubt


def no_raises(by_index, prev_sent):
    """The targets with every raise of a running limit held at what was sent: while
    the estimate leans on changes not yet confirmed, no more is handed out on it
    (a raise now would start a new wait for confirmation, and a rise of other load
    hidden by the first could stay hidden for as long as raises go on)."""
    out = list(by_index)
    i = -1
    for t, rec in zip(by_index, prev_sent):
        i += 1
        if rec is not None and rec.limit_da and t[1] == rec.phases and t[0] > rec.limit_da:
            out[i] = (rec.limit_da, t[1])
    return out


def assumed_draw(ev, layout, i, sent):
    """Add to ``ev`` what a controllable car that reports nothing is taken to draw:
    the limit it was sent, on the phases it was sent for. (An uncontrollable one is
    assumed to draw nothing here, so its current is never counted in our favour;
    its maximum is reserved anyway.)"""
    wiring = layout.specs[i].wiring
    for p in (wiring[:1] if sent.phases == 1 else wiring):
        ev[p] += sent.limit_da


def capacities(layout, measured, ext_da, cfg):
    """What every constraint can carry for the EVs this cycle (a new list), given
    the non-EV load per site phase (``measured``, None where not measured, or None
    as a whole in fail-safe)."""
    root = layout.root
    worst = False
    if measured is not None:
        non_ev = [0, 0, 0]
        for p in range(3):
            m = measured[p]
            if m is None:
                # This phase is not measured: its worst case, as in fail-safe.
                if cfg.failsafe_non_ev_da is not None:
                    non_ev[p] = cfg.failsafe_non_ev_da[p]
                else:
                    non_ev[p] = _INF
            else:
                non_ev[p] = m
    elif cfg.failsafe_non_ev_da is not None:
        non_ev = list(cfg.failsafe_non_ev_da)
    else:
        non_ev = None
    caps = list(layout.cap)
    for p in range(3):
        lim = root.max_da[p]
        if ext_da is not None and ext_da < lim:
            lim = ext_da
        lim -= root.margin_da
        if non_ev is None:
            # Fail-safe without a configured budget: all of it is taken as other
            # load. Nothing is left for EVs, and that is not reported as an overload.
            non_ev = [0, 0, 0]
            worst = True
        if worst or non_ev[p] == _INF:
            non_ev[p] = lim if lim > 0 else 0
        caps[layout.root_phase[p]] = lim - non_ev[p]
    if layout.root_sum is not None:
        k = layout.root_sum
        caps[k] = layout.cap[k] - 3 * root.margin_da - non_ev[0] - non_ev[1] - non_ev[2]
    return caps


def _loaded(spec, memo):
    if memo is not None and memo.mode == ONE:
        return spec.wiring[:1]
    return spec.wiring


def demand(layout, i, drawn, memo, sent, now_s, cfg):
    """The most a charging session should get: its maximum unless it clearly uses less.

    ``drawn`` is what it draws per site phase, ``sent`` what its connector was last
    sent (a limit above 0).
    """
    spec = layout.specs[i]
    hi = spec.max_da
    if now_s - sent.changed_s < cfg.raise_holdoff_s:
        # The car has not had time to follow its last limit: judge it later. Its
        # fair share stays reserved meanwhile (the ramp holds what is sent), so the
        # others' targets do not swing up and back.
        return hi
    if sent.phases != (1 if memo.mode == ONE else spec.phases):
        return hi
    lim = sent.limit_da
    d = 0
    for p in _loaded(spec, memo):
        if drawn[p] > d:
            d = drawn[p]
    head = cfg.unused_headroom_da
    if d + head < lim:
        return _clamp(d + head, spec.min_da, hi)
    if d + head // 2 >= lim:
        return hi
    return _clamp(lim, spec.min_da, hi)


def _clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)
