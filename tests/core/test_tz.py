from edge.core.civil import civil_from_days, days_from_civil, weekday
from edge.core.errors import ValidationError
from edge.core.tzrule import parse_tz

BERLIN = "CET-1CEST,M3.5.0,M10.5.0/3"


def _utc(y, mo, d, h=0, mi=0, s=0):
    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s


def test_civil_round_trip_and_known_dates():
    assert days_from_civil(1970, 1, 1) == 0
    assert days_from_civil(2000, 3, 1) == 11017
    assert civil_from_days(11016) == (2000, 2, 29)
    assert weekday(days_from_civil(2025, 6, 2)) == 0   # a Monday
    assert weekday(days_from_civil(1969, 12, 31)) == 2  # a Wednesday, before the epoch
    for d in range(-800, 80000, 37):
        y, m, dd = civil_from_days(d)
        assert days_from_civil(y, m, dd) == d


def test_berlin_transitions_2025_and_2026():
    tz = parse_tz(BERLIN)
    # 2025: DST from Sun 30 March 01:00 UTC to Sun 26 October 01:00 UTC.
    assert tz.transitions(2025) == (_utc(2025, 3, 30, 1), _utc(2025, 10, 26, 1))
    assert tz.transitions(2026) == (_utc(2026, 3, 29, 1), _utc(2026, 10, 25, 1))
    start = _utc(2025, 3, 30, 1)
    assert tz.offset_s(start - 1) == 3600
    assert tz.offset_s(start) == 7200
    end = _utc(2025, 10, 26, 1)
    assert tz.offset_s(end - 1) == 7200
    assert tz.offset_s(end) == 3600
    # local wall clock jumps 01:59:59 -> 03:00:00
    assert tz.to_local(start - 1) % 86400 == 2 * 3600 - 1
    assert tz.to_local(start) % 86400 == 3 * 3600


def test_southern_hemisphere_and_fractional_offsets():
    sydney = parse_tz("AEST-10AEDT,M10.1.0,M4.1.0/3")
    assert sydney.offset_s(_utc(2025, 1, 15)) == 11 * 3600
    assert sydney.offset_s(_utc(2025, 7, 15)) == 10 * 3600
    india = parse_tz("IST-5:30")
    assert india.offset_s(_utc(2025, 7, 15)) == 5 * 3600 + 1800
    assert india.dst_name is None
    ny = parse_tz("EST5EDT,M3.2.0,M11.1.0")
    assert ny.offset_s(_utc(2025, 3, 9, 6, 59, 59)) == -5 * 3600
    assert ny.offset_s(_utc(2025, 3, 9, 7)) == -4 * 3600


def test_julian_and_zero_based_rules():
    # J60 is always March 1; 59 (zero-based) is Feb 29 in a leap year, March 1 otherwise.
    a = parse_tz("AAA0BBB,J60/0,J300/0")
    assert a.transitions(2024)[0] == _utc(2024, 3, 1)
    assert a.transitions(2025)[0] == _utc(2025, 3, 1)
    b = parse_tz("AAA0BBB,59/0,300/0")
    assert b.transitions(2024)[0] == _utc(2024, 2, 29)
    assert b.transitions(2025)[0] == _utc(2025, 3, 1)


def test_quoted_names_and_explicit_dst_offset():
    tz = parse_tz("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0")
    assert tz.std_off_s == 37800 and tz.dst_off_s == 39600
    utc = parse_tz("UTC")
    assert utc.offset_s(123456789) == 0
    assert parse_tz("<-03>3").offset_s(0) == -3 * 3600


def test_bad_rules_refused_with_field():
    for text in ("", "Europe/Berlin", "CET", "CE-1", "CET-1CEST", "CET-1CEST,M3.5.0",
                 "CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,M3.5.7,M10.5.0",
                 "CET-1CEST,J0,J100", "CET-1CEST,366,100", "CET-1CEST,M3.5.0/200,M10.5.0",
                 "CET-25", "CET-1CEST,M3.5.0,M10.5.0/3x", "<AB>1", None, 5):
        try:
            parse_tz(text, "site.timezone")
        except ValidationError as e:
            assert e.field == "site.timezone", str(e)
            assert e.value == text
            continue
        raise AssertionError("accepted %r" % (text,))


def test_only_ascii_names_and_digits():
    # CPython's isdigit() accepts U+0663 and full-width digits; MicroPython does not.
    for text in ("CET-\u0663", "\u00c4BC-1", "CET-\uff11"):
        try:
            parse_tz(text)
        except ValidationError:
            continue
        raise AssertionError("accepted %r" % text)


def _zeller_weekday(y, m, d):
    """Day of week by Zeller's congruence (0 = Saturday), independent of edge.core.civil."""
    if m < 3:
        m += 12
        y -= 1
    k = y % 100
    j = y // 100
    return (d + (13 * (m + 1)) // 5 + k + k // 4 + j // 4 + 5 * j) % 7


def _last_sunday(y, m):
    d = 31
    while _zeller_weekday(y, m, d) != 1:   # 1 = Sunday in Zeller's numbering
        d -= 1
    return d


def test_berlin_rule_equals_the_eu_law_for_forty_years():
    # EU directive 2000/84/EC: summer time from 01:00 UTC on the last Sunday of March
    # to 01:00 UTC on the last Sunday of October. Runs on MicroPython as well.
    tz = parse_tz(BERLIN)
    for year in range(2000, 2041):
        start = _utc(year, 3, _last_sunday(year, 3), 1)
        end = _utc(year, 10, _last_sunday(year, 10), 1)
        assert tz.transitions(year) == (start, end), year
        for t, want in ((start - 1, 3600), (start, 7200), (end - 1, 7200), (end, 3600),
                        (_utc(year, 1, 1), 3600), (_utc(year, 7, 1), 7200), (_utc(year, 12, 31, 23, 59, 59), 3600)):
            assert tz.offset_s(t) == want, (year, t)
