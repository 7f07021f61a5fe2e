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
- Non-EV load: a sample taken before the last change plus raise_holdoff_s may
  be from before a cut or a phase switch the car has not followed yet, or not
  followed yet when the meter read. It counts at most min(sample, limit in
  force) per phase, and only on the phases that limit was sent for: the car's
  draw is never overestimated, so the non-EV load is never underestimated.
A sample without a time is taken to be current, as it always was.
"""

from edge.core.circuits import ONE

_INF = 1 << 62


# The freshness tests themselves are inlined in allocation.allocate (they run for
# every session every cycle):
#   demand:  drawn_at_s is None or drawn_at_s >= sent.raised_s + raise_holdoff_s
#   draw:    sent is None or drawn_at_s is None or drawn_at_s >= sent.changed_s + raise_holdoff_s
# A fresh sample counts as drawn; the two functions below cover the rest.


def stale_draw(ev, layout, i, drawn, sent):
    """Add to ``ev`` (per site phase) what connector i's car is taken to draw when
    its sample is older than its last change: at most the sample and at most the
    limit in force, and only on the phases that limit was sent for."""
    wiring = layout.specs[i].wiring
    lim = sent.limit_da
    for p in (wiring[:1] if sent.phases == 1 else wiring):
        ev[p] += drawn[p] if drawn[p] < lim else lim


def assumed_draw(ev, layout, i, sent):
    """Add to ``ev`` what a controllable car that reports nothing is taken to draw:
    the limit it was sent, on the phases it was sent for. (An uncontrollable one is
    assumed to draw nothing here, so its current is never counted in our favour;
    its maximum is reserved anyway.)"""
    wiring = layout.specs[i].wiring
    for p in (wiring[:1] if sent.phases == 1 else wiring):
        ev[p] += sent.limit_da


def capacities(layout, ev, grid_da, ext_da, cfg):
    """What every constraint can carry for the EVs this cycle (a new list), given
    what the EVs draw per site phase (``ev``)."""
    root = layout.root
    worst = False
    if grid_da is not None:
        non_ev = [0, 0, 0]
        for p in range(3):
            g = grid_da[p]
            if g is None:
                # This phase is not measured: its worst case, as in fail-safe.
                if cfg.failsafe_non_ev_da is not None:
                    non_ev[p] = cfg.failsafe_non_ev_da[p]
                else:
                    non_ev[p] = _INF
            elif g > ev[p]:
                non_ev[p] = g - ev[p]
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
