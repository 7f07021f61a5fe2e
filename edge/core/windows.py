"""Weekly availability windows (eRoaming) in the site's local time.

Shape: ``[{"days": [0, 1, 2, 3, 4], "start": "07:00", "end": "19:00"}, ...]``
with 0 = Monday. ``start`` is inclusive, ``end`` exclusive; ``end`` may be
"24:00" for the end of the day; ``end`` must be after ``start`` (a window over
midnight is written as two windows). An empty list means never available.

Membership is judged on the local wall clock: the UTC instant is converted
with the site's POSIX TZ rule, then the weekday and minute are read. On the
spring-forward day the skipped hour simply never occurs; on the fall-back day
the repeated hour is inside a window both times it occurs.
"""

from edge.core.checks import is_ascii_digit, need_dict, need_list, no_unknown_keys
from edge.core.civil import DAY_S, weekday
from edge.core.errors import ValidationError

_WINDOW_KEYS = ("days", "start", "end")
MAX_WINDOWS = 50


def _minutes(text, field, allow_24):
    ok = isinstance(text, str) and len(text) == 5 and text[2] == ":" and \
        is_ascii_digit(text[0]) and is_ascii_digit(text[1]) and \
        is_ascii_digit(text[3]) and is_ascii_digit(text[4])
    if ok:
        h = int(text[:2])
        m = int(text[3:])
        if (h < 24 and m < 60) or (allow_24 and h == 24 and m == 0):
            return h * 60 + m
    raise ValidationError(field, text, "must be a time HH:MM" + (" (00:00..24:00)" if allow_24 else " (00:00..23:59)"))


def parse_windows(windows, field="windows"):
    """Validate windows; return a tuple of (days_mask, start_min, end_min)."""
    need_list(windows, field)
    if len(windows) > MAX_WINDOWS:
        raise ValidationError(field, len(windows), "at most %d windows" % MAX_WINDOWS)
    out = []
    for i, w in enumerate(windows):
        wf = "%s[%d]" % (field, i)
        need_dict(w, wf)
        no_unknown_keys(w, wf, _WINDOW_KEYS)
        days = need_list(w.get("days"), wf + ".days")
        if not days:
            raise ValidationError(wf + ".days", days, "must name at least one weekday (0 = Monday)")
        mask = 0
        for j, d in enumerate(days):
            if not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 6:
                raise ValidationError("%s.days[%d]" % (wf, j), d, "must be a weekday 0..6 (0 = Monday)")
            if mask & (1 << d):
                raise ValidationError("%s.days[%d]" % (wf, j), d, "weekday listed twice")
            mask |= 1 << d
        start = _minutes(w.get("start"), wf + ".start", False)
        end = _minutes(w.get("end"), wf + ".end", True)
        if end <= start:
            raise ValidationError(wf + ".end", w.get("end"),
                                  "must be after start %s (split a window over midnight in two)" % w.get("start"))
        out.append((mask, start, end))
    return tuple(out)


def windows_to_list(compiled):
    """The list shape again, from parsed windows."""
    out = []
    for mask, start, end in compiled:
        out.append({"days": [d for d in range(7) if mask & (1 << d)],
                    "start": "%02d:%02d" % (start // 60, start % 60),
                    "end": "%02d:%02d" % (end // 60, end % 60)})
    return out


def in_windows(compiled, tz, utc_s):
    """True if the UTC instant falls in one of the windows, read in the zone ``tz``."""
    local = tz.to_local(utc_s)
    day = local // DAY_S
    minute = (local % DAY_S) // 60
    bit = 1 << weekday(day)
    for mask, start, end in compiled:
        if mask & bit and start <= minute < end:
            return True
    return False

