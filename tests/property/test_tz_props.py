"""POSIX TZ rule arithmetic against CPython's zoneinfo and an independent datetime reference."""
import calendar
import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st

from edge.core.tzrule import parse_tz
from edge.core.windows import in_windows, parse_windows

UTC = dt.timezone.utc
# (rule, zone, first year the rule holds in the tz database)
ZONES = [
    ("CET-1CEST,M3.5.0,M10.5.0/3", "Europe/Berlin", 1996),
    ("GMT0BST,M3.5.0/1,M10.5.0", "Europe/London", 1996),
    ("EST5EDT,M3.2.0,M11.1.0", "America/New_York", 2007),
    ("AEST-10AEDT,M10.1.0,M4.1.0/3", "Australia/Sydney", 2008),
    ("NZST-12NZDT,M9.5.0,M4.1.0/3", "Pacific/Auckland", 2008),
    ("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "Australia/Lord_Howe", 2008),
    ("IST-5:30", "Asia/Kolkata", 1946),
    ("IST-1GMT0,M10.5.0,M3.5.0/1", "Europe/Dublin", 1997),      # negative DST: winter is the "DST"
    ("<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "America/Nuuk", 2024),    # negative transition time
]


def _utc(y, mo, d, h=0):
    return calendar.timegm((y, mo, d, h, 0, 0))


def _berlin_dst_days(year):
    """Instants near both Berlin change days of a year (last Sundays of March and October)."""
    out = []
    for month in (3, 10):
        last = max(d for d in range(25, 32) if dt.date(year, month, d).weekday() == 6)
        out.append(_utc(year, month, last))
    return out


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ZONES), st.integers(0, 2 ** 31))
def test_offset_matches_zoneinfo(zone, offset_in_range):
    rule, name, since = zone
    lo, hi = _utc(since + 1, 1, 1), _utc(2037, 12, 31)
    t = lo + offset_in_range % (hi - lo)
    want = int(dt.datetime.fromtimestamp(t, ZoneInfo(name)).utcoffset().total_seconds())
    assert parse_tz(rule).offset_s(t) == want


@settings(max_examples=300, deadline=None)
@given(st.integers(1997, 2037), st.sampled_from([0, 1]), st.integers(-3 * 3600, 3 * 3600))
def test_berlin_change_days_match_zoneinfo(year, which, delta_s):
    t = _berlin_dst_days(year)[which] + delta_s
    want = int(dt.datetime.fromtimestamp(t, ZoneInfo("Europe/Berlin")).utcoffset().total_seconds())
    assert parse_tz("CET-1CEST,M3.5.0,M10.5.0/3").offset_s(t) == want


def _m_rule_date(year, month, week, wday_sun0):
    """Reference: the w-th (5 = last) given weekday of a month, via datetime."""
    days = [d for d in range(1, calendar.monthrange(year, month)[1] + 1)
            if (dt.date(year, month, d).weekday() + 1) % 7 == wday_sun0]
    return days[min(week, len(days)) - 1]


@settings(max_examples=300, deadline=None)
@given(st.integers(-12, 12), st.integers(1, 12), st.integers(1, 5), st.integers(0, 6), st.integers(0, 23),
       st.integers(1, 12), st.integers(1, 5), st.integers(0, 6), st.integers(0, 23), st.integers(1971, 2100))
def test_m_rules_match_a_datetime_reference(std_h, m1, w1, d1, h1, m2, w2, d2, h2, year):
    if m1 == m2:
        m2 = m1 % 12 + 1
    rule = "AAA%dBBB,M%d.%d.%d/%d,M%d.%d.%d/%d" % (std_h, m1, w1, d1, h1, m2, w2, d2, h2)
    tz = parse_tz(rule)
    std_off = -std_h * 3600
    dst_off = std_off + 3600
    start = _utc(year, m1, _m_rule_date(year, m1, w1, d1), h1) - std_off
    end = _utc(year, m2, _m_rule_date(year, m2, w2, d2), h2) - dst_off
    assert tz.transitions(year) == (start, end)


WINDOWS = st.lists(
    st.tuples(st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True),
              st.integers(0, 24 * 60 - 1), st.integers(1, 24 * 60)).filter(lambda w: w[2] > w[1]),
    max_size=4)


def _hhmm(m):
    return "%02d:%02d" % (m // 60, m % 60)


@settings(max_examples=300, deadline=None)
@given(WINDOWS, st.integers(1997, 2037), st.sampled_from([0, 1]), st.integers(-30 * 3600, 30 * 3600),
       st.integers(0, 1))
def test_windows_read_the_berlin_wall_clock(raw, year, which, delta_s, far):
    """Membership equals what a person reads on a Berlin clock, also on both change days."""
    windows = [{"days": days, "start": _hhmm(s), "end": _hhmm(e)} for days, s, e in raw]
    compiled = parse_windows(windows)
    t = _berlin_dst_days(year)[which] + delta_s + far * 86400 * 45
    local = dt.datetime.fromtimestamp(t, ZoneInfo("Europe/Berlin"))
    minute = local.hour * 60 + local.minute
    want = any(local.weekday() in days and s <= minute < e for days, s, e in raw)
    assert in_windows(compiled, parse_tz("CET-1CEST,M3.5.0,M10.5.0/3"), t) == want


@settings(max_examples=400, deadline=None)
@given(WINDOWS.filter(lambda w: len(w) > 0), st.integers(1997, 2037), st.sampled_from([3, 10]),
       st.integers(-2, 2), st.integers(0, 3), st.booleans(), st.integers(0, 1), st.integers(-90, 90))
def test_windows_at_their_edges(raw, year, month, day_shift, which, at_end, fold, delta_s):
    """Instants within 90 s of a window's start or end, on and around both change days."""
    windows = [{"days": days, "start": _hhmm(s), "end": _hhmm(e)} for days, s, e in raw]
    compiled = parse_windows(windows)
    days, s, e = raw[which % len(raw)]
    base = _berlin_dst_days(year)[0 if month == 3 else 1] + day_shift * 86400
    day = dt.datetime.fromtimestamp(base, UTC).date()
    local = dt.datetime(day.year, day.month, day.day) + dt.timedelta(minutes=e if at_end else s)
    t = int(local.replace(tzinfo=ZoneInfo("Europe/Berlin"), fold=fold).timestamp()) + delta_s
    seen = dt.datetime.fromtimestamp(t, ZoneInfo("Europe/Berlin"))
    minute = seen.hour * 60 + seen.minute
    want = any(seen.weekday() in d and a <= minute < b for d, a, b in raw)
    assert in_windows(compiled, parse_tz("CET-1CEST,M3.5.0,M10.5.0/3"), t) == want


def _tzif_footer_and_last_transition(data):
    """(POSIX footer rule, last explicit transition in UTC seconds) of a TZif v2+ file (RFC 8536)."""
    import struct
    counts = struct.unpack(">6l", data[20:44])
    isut, isstd, leap, timecnt, typecnt, charcnt = counts
    v1 = timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut
    h2 = 44 + v1
    isut, isstd, leap, timecnt, typecnt, charcnt = struct.unpack(">6l", data[h2 + 20:h2 + 44])
    times = struct.unpack(">%dq" % timecnt, data[h2 + 44:h2 + 44 + timecnt * 8])
    footer = data.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode("ascii")
    return footer, (max(times) if times else None)


def _footer_rules():
    """(zone, POSIX rule, from_s) for every zone of the system's tz database.

    After its last listed transition (from_s) a zone follows the footer rule,
    so zoneinfo's answers from then on are exactly what the rule says: hundreds
    of real rules to check the parser and the arithmetic against.
    """
    import os
    from zoneinfo import available_timezones
    out = []
    for name in sorted(available_timezones()):
        path = os.path.join("/usr/share/zoneinfo", name)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if not data.startswith(b"TZif") or data[4:5] < b"2":
            continue
        footer, last = _tzif_footer_and_last_transition(data)
        if footer:
            out.append((name, footer, last))
    return out


FOOTERS = _footer_rules()


def test_every_system_zone_rule_parses_and_matches_zoneinfo_around_its_2045_changes():
    assert len(FOOTERS) > 300, "the system tz database was not found"
    checked = 0
    for name, rule, last in FOOTERS:
        tz = parse_tz(rule)
        zone = ZoneInfo(name)
        year = 2045
        if last is not None and last >= _utc(2044, 1, 1):
            year = dt.datetime.fromtimestamp(last, UTC).year + 2    # e.g. Casablanca lists Ramadan to 2087
        probes = [_utc(year, 1, 15), _utc(year, 7, 15)]
        if tz.dst_name is not None:
            for t in tz.transitions(year):
                probes.extend((t - 1, t, t + 1))
        checked += 1
        for t in probes:
            want = int(dt.datetime.fromtimestamp(t, zone).utcoffset().total_seconds())
            assert tz.offset_s(t) == want, (name, rule, t)
    assert checked == len(FOOTERS)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FOOTERS or [("UTC", "UTC0", None)]), st.integers(0, 50 * 365 * 86400))
def test_system_zone_rules_match_zoneinfo_anywhere_later(zone_rule, later_s):
    name, rule, last = zone_rule
    t = max(_utc(2040, 1, 1), (last or 0) + 1) + later_s
    want = int(dt.datetime.fromtimestamp(t, ZoneInfo(name)).utcoffset().total_seconds())
    assert parse_tz(rule).offset_s(t) == want, (name, rule)
