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
