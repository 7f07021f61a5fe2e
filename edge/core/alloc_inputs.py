"""Reading the allocation's inputs from the outside world, defensively.

The grid meter, the wallboxes' samples and the cloud's site limit can all be
wrong. Nothing here raises: a bad reading puts the site in fail-safe, a bad
session field falls back to the safe assumption for that field, and every such
case is reported as a text naming the field and the value, so the service keeps
allocating (and keeps cutting when it must) while support can see what is wrong.
"""

from edge.core.errors import ValidationError

METER_MISSING = "meter_missing"
METER_STALE = "meter_stale"
METER_INVALID = "meter_invalid"
METER_PARTIAL = "meter_partial"    # some phases unknown: fail-safe on those only
_MAX_DA = 100000
_FUTURE_SLACK_S = 5


# A live session as the allocation sees it is a tuple (fast to build and unpack):
#   (i, key, session_id, priority, started_s, drawn_da, controllable, drawn_at_s)
# i is the connector's number in the layout; drawn_da is a tuple of 3 per site
# phase or None (unknown); drawn_at_s is when that sample was taken (UTC
# seconds), None when the producer does not say, or SAMPLE_TIME_BAD when it
# said something unusable (then the sample is judged as if taken long ago).

SAMPLE_TIME_BAD = -(1 << 62)


def _field(obj, name):
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def read_meter(meter, now_s, max_age_s):
    """(current per site phase as a tuple, None) when the reading is good;
    (None, reason) for fail-safe; (tuple with None for unknown phases,
    METER_PARTIAL) when the meter reports some phases as not available."""
    if meter is None:
        return None, METER_MISSING
    cur = _field(meter, "current_da")
    at_s = _field(meter, "at_s")
    if not isinstance(cur, (list, tuple)) or len(cur) != 3:
        return None, METER_INVALID
    unknown = 0
    for v in cur:
        if v is None:
            unknown += 1
        elif not isinstance(v, int) or isinstance(v, bool) or v < 0 or v > _MAX_DA:
            return None, METER_INVALID
    if unknown == 3:
        return None, METER_INVALID
    if not isinstance(at_s, (int, float)) or isinstance(at_s, bool) or at_s != at_s:
        return None, METER_INVALID
    if at_s > now_s + _FUTURE_SLACK_S:
        # A reading from the future is a broken clock, not fresh data.
        return None, METER_INVALID
    if now_s - at_s > max_age_s:
        return None, METER_STALE
    return tuple(cur), (METER_PARTIAL if unknown else None)


def read_site_limit(site_limit, now_s, notes):
    """The external per-phase cap in deciamps while it is unexpired, else None."""
    if site_limit is None:
        return None
    max_da = _field(site_limit, "max_da")
    expires_s = _field(site_limit, "expires_s")
    if max_da is None:
        return None
    if not isinstance(max_da, int) or isinstance(max_da, bool) or max_da < 0:
        notes.append(str(ValidationError("site_limit.max_da", max_da, "must be a whole number of deciamps, 0 or more")))
        # A cap we cannot read is treated as the strictest one: better slow than tripped.
        return 0
    if expires_s is not None and (not isinstance(expires_s, (int, float)) or isinstance(expires_s, bool)):
        notes.append(str(ValidationError("site_limit.expires_s", expires_s, "must be UTC seconds")))
        return max_da
    if expires_s is not None and now_s >= expires_s:
        return None
    return max_da


def read_sessions(sessions, layout, now_s, notes):
    """Like read_live, without the sample times: rows of 7."""
    return [row[:7] for row in read_live(sessions, layout, now_s, notes)]


def read_live(sessions, layout, now_s, notes):
    """Sessions known to the layout, one per connector, as a list of rows."""
    return list(iter_live(sessions, layout, now_s, notes))


def iter_live(sessions, layout, now_s, notes):
    """Sessions known to the layout, one per connector, row by row; the rest are
    reported. The allocation takes the rows one at a time, so a cycle never holds
    a thousand of them at once (fewer garbage-collector passes).

    The common case (every field well-formed) takes the short path; any odd
    field goes through the checks below, which name it.
    """
    seen = [-1] * layout.n    # per connector: the list position of its session
    if not isinstance(sessions, (list, tuple)):
        notes.append(str(ValidationError("sessions", sessions, "must be a list")))
        return
    index = layout.index
    get_index = index.get
    latest_s = now_s + _FUTURE_SLACK_S
    n = -1
    for s in sessions:
        n += 1
        if type(s) is not dict:
            notes.append(str(ValidationError("sessions[%d]" % n, s, "must be an object")))
            continue
        get = s.get
        key = get("key")
        if type(key) is list:
            key = tuple(key)
        i = get_index(key) if type(key) is tuple else None
        if i is None or seen[i] >= 0:
            _refuse_key(key, n, None if i is None else seen[i], notes)
            continue
        seen[i] = n
        prio = get("priority")
        if prio is None:
            prio = get("prioritised", False)
            prio = 1 if prio is True else (0 if prio is False else _priority(s, n, notes))
        elif type(prio) is not int or not -1000 <= prio <= 1000:
            prio = _priority(s, n, notes)
        started = get("started_s")
        if type(started) is not int and (type(started) is not float or started != started):
            started = _started(s, n, now_s, notes)
        drawn = get("drawn_da")
        if drawn is not None:
            if (type(drawn) is tuple or type(drawn) is list) and len(drawn) == 3:
                a, b, c = drawn
                if type(a) is int and type(b) is int and type(c) is int \
                        and 0 <= a <= _MAX_DA and 0 <= b <= _MAX_DA and 0 <= c <= _MAX_DA:
                    if type(drawn) is not tuple:
                        drawn = (a, b, c)
                else:
                    drawn = _drawn(s, n, notes)
            else:
                drawn = _drawn(s, n, notes)
        ctl = get("controllable", True)
        if ctl is not True and ctl is not False:
            ctl = _controllable(s, n, notes)
        at = get("drawn_at_s")
        if at is not None and ((type(at) is not int and (type(at) is not float or at != at))
                               or at > latest_s):
            at = _drawn_at(s, n, now_s, notes)
        yield i, key, get("session_id"), prio, started, drawn, ctl, at


def _refuse_key(key, n, first, notes):
    f = "sessions[%d].key" % n
    if first is not None:
        notes.append(str(ValidationError(f, key, "has a second session (first at sessions[%d])" % first)))
    else:
        notes.append(str(ValidationError(f, key, "is not a configured connector")))


def _priority(s, n, notes):
    f = "sessions[%d]" % n
    p = s.get("priority")
    if p is not None:
        if isinstance(p, int) and not isinstance(p, bool) and -1000 <= p <= 1000:
            return p
        notes.append(str(ValidationError(f + ".priority", p, "must be a whole number")))
    pr = s.get("prioritised", False)
    if pr is True or pr is False:
        return 1 if pr else 0
    notes.append(str(ValidationError(f + ".prioritised", pr, "must be true or false")))
    return 0


def _started(s, n, now_s, notes):
    f = "sessions[%d]" % n
    t = s.get("started_s")
    if isinstance(t, (int, float)) and not isinstance(t, bool) and t == t:
        return t
    notes.append(str(ValidationError(f + ".started_s", t, "must be UTC seconds")))
    # Unknown arrival: treat it as the latest one, so it waits rather than displaces.
    return now_s


def _drawn(s, n, notes):
    f = "sessions[%d]" % n
    d = s.get("drawn_da")
    if d is None:
        return None
    if isinstance(d, (list, tuple)) and len(d) == 3:
        ok = True
        for v in d:
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0 or v > _MAX_DA):
                ok = False
        if ok:
            if None in d:
                # Partly sampled: treated as unknown (the EV is assumed to draw its limit).
                return None
            return tuple(d)
    notes.append(str(ValidationError(f + ".drawn_da", d, "must be 3 deciamp values per site phase")))
    return None


def _drawn_at(s, n, now_s, notes):
    f = "sessions[%d].drawn_at_s" % n
    t = s.get("drawn_at_s")
    if isinstance(t, (int, float)) and not isinstance(t, bool) and t == t:
        if t <= now_s + _FUTURE_SLACK_S:
            return t
        # A wallbox clock ahead of ours: its times cannot be compared with our limits.
        notes.append(str(ValidationError(f, t, "must not be in the future (now %s)" % (now_s,))))
    else:
        notes.append(str(ValidationError(f, t, "must be UTC seconds")))
    # When it was taken is unknown: it may predate any limit, so it is judged stale.
    return SAMPLE_TIME_BAD


def _controllable(s, n, notes):
    f = "sessions[%d]" % n
    c = s.get("controllable", True)
    if c is True or c is False:
        return c
    notes.append(str(ValidationError(f + ".controllable", c, "must be true or false")))
    # Cannot tell whether it obeys: plan for its maximum.
    return False
