from edge.core.civil import days_from_civil
from edge.core.errors import ValidationError
from edge.core.tzrule import parse_tz
from edge.core.windows import in_windows, parse_windows, windows_to_list

BERLIN = parse_tz("CET-1CEST,M3.5.0,M10.5.0/3")


def _utc(y, mo, d, h=0, mi=0, s=0):
    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s


def test_weekday_hours_in_local_time():
    w = parse_windows([{"days": [0, 1, 2, 3, 4], "start": "07:00", "end": "19:00"}])
    # Monday 2 June 2025 (CEST, UTC+2)
    assert not in_windows(w, BERLIN, _utc(2025, 6, 2, 4, 59, 59))   # 06:59:59 local
    assert in_windows(w, BERLIN, _utc(2025, 6, 2, 5))                # 07:00 local
    assert in_windows(w, BERLIN, _utc(2025, 6, 2, 16, 59, 59))       # 18:59:59 local
    assert not in_windows(w, BERLIN, _utc(2025, 6, 2, 17))           # 19:00 local: end is exclusive
    # Saturday
    assert not in_windows(w, BERLIN, _utc(2025, 6, 7, 10))
    # Winter (CET, UTC+1): 07:00 local is 06:00 UTC
    assert not in_windows(w, BERLIN, _utc(2025, 1, 6, 5, 59))
    assert in_windows(w, BERLIN, _utc(2025, 1, 6, 6))


def test_spring_forward_day():
    # Sunday 30 March 2025: 02:00 local does not exist, clocks go 01:59:59 -> 03:00.
    w = parse_windows([{"days": [6], "start": "02:30", "end": "03:30"}])
    assert not in_windows(w, BERLIN, _utc(2025, 3, 30, 0, 59, 59))   # 01:59:59 CET
    assert in_windows(w, BERLIN, _utc(2025, 3, 30, 1))                # 03:00 CEST
    assert in_windows(w, BERLIN, _utc(2025, 3, 30, 1, 29, 59))        # 03:29:59 CEST
    assert not in_windows(w, BERLIN, _utc(2025, 3, 30, 1, 30))        # 03:30 CEST
    day = parse_windows([{"days": [6], "start": "00:00", "end": "24:00"}])
    # The Sunday is only 23 hours long: from 23:00 UTC Saturday to 22:00 UTC Sunday.
    assert in_windows(day, BERLIN, _utc(2025, 3, 29, 23))
    assert in_windows(day, BERLIN, _utc(2025, 3, 30, 21, 59, 59))
    assert not in_windows(day, BERLIN, _utc(2025, 3, 30, 22))


def test_fall_back_day_repeated_hour_is_inside_both_times():
    # Sunday 26 October 2025: 02:00-03:00 local happens twice (CEST, then CET).
    w = parse_windows([{"days": [6], "start": "02:00", "end": "03:00"}])
    assert not in_windows(w, BERLIN, _utc(2025, 10, 25, 23, 59, 59))  # 01:59:59 CEST
    assert in_windows(w, BERLIN, _utc(2025, 10, 26, 0))                # 02:00 CEST
    assert in_windows(w, BERLIN, _utc(2025, 10, 26, 0, 59, 59))        # 02:59:59 CEST
    assert in_windows(w, BERLIN, _utc(2025, 10, 26, 1))                # 02:00 CET again
    assert in_windows(w, BERLIN, _utc(2025, 10, 26, 1, 59, 59))        # 02:59:59 CET
    assert not in_windows(w, BERLIN, _utc(2025, 10, 26, 2))            # 03:00 CET


def test_empty_windows_mean_never_and_round_trip():
    assert not in_windows(parse_windows([]), BERLIN, _utc(2025, 6, 2, 12))
    src = [{"days": [5, 6], "start": "00:00", "end": "24:00"}, {"days": [0], "start": "07:15", "end": "08:45"}]
    w = parse_windows(src)
    assert windows_to_list(w) == src
    assert parse_windows(windows_to_list(w)) == w


def test_bad_windows_name_the_field():
    cases = [
        ([{"days": [0], "start": "19:00", "end": "07:00"}], "windows[0].end"),
        ([{"days": [0], "start": "07:00", "end": "07:00"}], "windows[0].end"),
        ([{"days": [0], "start": "24:00", "end": "24:00"}], "windows[0].start"),
        ([{"days": [0], "start": "7:00", "end": "19:00"}], "windows[0].start"),
        ([{"days": [0], "start": "07:60", "end": "19:00"}], "windows[0].start"),
        ([{"days": [0], "start": "07:00", "end": "24:01"}], "windows[0].end"),
        ([{"days": [], "start": "07:00", "end": "19:00"}], "windows[0].days"),
        ([{"days": [7], "start": "07:00", "end": "19:00"}], "windows[0].days[0]"),
        ([{"days": [1, 1], "start": "07:00", "end": "19:00"}], "windows[0].days[1]"),
        ([{"days": [True], "start": "07:00", "end": "19:00"}], "windows[0].days[0]"),
        ([{"days": [1], "start": "07:00", "end": "19:00", "tz": "x"}], "windows[0].tz"),
        ([{"days": [1], "start": "07:00", "end": "19:00"}, "x"], "windows[1]"),
        ("mon-fri", "windows"),
    ]
    for value, field in cases:
        try:
            parse_windows(value)
        except ValidationError as e:
            assert e.field == field, (e.field, field, str(e))
            continue
        raise AssertionError("accepted %r" % (value,))


def test_only_ascii_digits_in_times():
    for start in ("\uff10\uff17:00", "0\u0667:00"):
        try:
            parse_windows([{"days": [0], "start": start, "end": "19:00"}])
        except ValidationError as e:
            assert e.field == "windows[0].start"
            continue
        raise AssertionError("accepted %r" % start)
