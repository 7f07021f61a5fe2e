"""Cut fast, raise slowly, and send nothing that does not change.

A breaker forgives a small overload for minutes and a large one for seconds, and
a car needs 5 to 30 s to follow a new limit. So a lower target is sent at once,
while a higher one waits ``raise_holdoff_s`` after the connector's last change
and then rises by at most ``ramp_step_da``. Raises smaller than
``min_change_da`` are not sent until the limit has stood ``small_raise_after_s``,
so wallboxes are not flooded with profiles for noise, yet a site of many cars
does not leave each a fraction of an amp below its share for good. What is sent is never above the target, so every limit the
allocation respected still holds while a raise is pending.
"""

from edge.core.alloc_state import Sent


def ramp(target_da, phases, prev, min_da, now_s, cfg):
    """(limit to send, Sent record) for one connector; the record is ``prev`` when unchanged."""
    if prev is None or phases != prev.phases:
        # First limit or a phase switch (decided under its own hold): sent at once.
        return target_da, Sent(target_da, phases, now_s)
    if target_da < prev.limit_da:
        return target_da, Sent(target_da, phases, now_s, prev.raised_s)
    last = prev.limit_da
    if target_da == last:
        return last, prev
    if now_s - prev.changed_s < cfg.raise_holdoff_s:
        return last, prev
    step = last + cfg.ramp_step_da
    new = target_da if target_da < step else step
    if last == 0 and new < min_da:
        # Leaving a pause: never a value between 0 and the minimum.
        new = min_da if min_da <= target_da else target_da
    if new - last < cfg.min_change_da and new != target_da:
        return last, prev
    if new - last < cfg.min_change_da and last != 0:
        wait = cfg.small_raise_after_s
        if not wait or now_s - prev.changed_s < wait:
            return last, prev
    return new, Sent(new, phases, now_s)


def ramp_all(layout, by_index, state, now_s, cfg, prev_by_index=None):
    """Ramp every connector of the layout (``by_index[i]``: its (target, phases)).
    ``prev_by_index[i]``, when given, is what state.sent holds for connector i.
    Returns (limits, changed, sent records) keyed by connector."""
    keys = layout.keys
    if prev_by_index is None:
        prev_by_index = list(map(state.sent.get, keys))
    # Most connectors keep what they were sent: build both dicts whole, then fix the
    # few that ramp.
    limits = dict(zip(keys, by_index))
    sent = dict(zip(keys, prev_by_index))
    changed = {}
    min_da = layout.min_da
    i = -1
    for t, prev in zip(by_index, prev_by_index):
        i += 1
        if prev is not None and prev.limit_da == t[0] and prev.phases == t[1]:
            continue
        value, rec = ramp(t[0], t[1], prev, min_da[i], now_s, cfg)
        if value != t[0]:
            limits[keys[i]] = (value, t[1])
        sent[keys[i]] = rec
        if rec is not prev:
            changed[keys[i]] = (value, t[1])
    return limits, changed, sent
