# Reading the allocation's inputs: hostile or broken values degrade safely and are named.
from edge.core.alloc_inputs import read_meter, read_sessions, read_site_limit
from test_alloc_kit import Meter, flat_tree, limit_of, run, session


def _layout():
    return flat_tree(2, grid_da=300).compile()


def test_sessions_must_be_a_list():
    notes = []
    assert read_sessions({"key": ("CP0", 1)}, _layout(), 100, notes) == []
    assert notes[0].startswith("sessions: must be a list")


def test_key_may_arrive_as_a_json_list():
    notes = []
    out = read_sessions([{"key": ["CP1", 1], "session_id": "a", "started_s": 5}], _layout(), 100, notes)
    assert out == [(1, ("CP1", 1), "a", 0, 5, None, True)] and notes == []


def test_priority_fields():
    notes = []
    rows = [{"key": ("CP0", 1), "priority": 7, "started_s": 1},
            {"key": ("CP1", 1), "priority": True, "prioritised": True, "started_s": 1}]
    out = read_sessions(rows, _layout(), 100, notes)
    assert [o[3] for o in out] == [7, 1]
    assert "sessions[1].priority" in notes[0] and "(got True)" in notes[0]


def test_partly_sampled_or_bad_draws_count_as_unknown():
    notes = []
    rows = [{"key": ("CP0", 1), "started_s": 1, "drawn_da": [10, None, 10]},
            {"key": ("CP1", 1), "started_s": 1, "drawn_da": [10, 10, 10.5]}]
    out = read_sessions(rows, _layout(), 100, notes)
    assert out[0][5] is None and out[1][5] is None
    assert len(notes) == 1 and "sessions[1].drawn_da" in notes[0]


def test_nan_start_is_the_latest_arrival():
    notes = []
    out = read_sessions([{"key": ("CP0", 1), "started_s": float("nan")}], _layout(), 100, notes)
    assert out[0][4] == 100 and "started_s" in notes[0]


def test_meter_reading_rules():
    assert read_meter(Meter([1, 2, 3], 95), 100, 10) == ((1, 2, 3), None)
    assert read_meter(Meter([1, 2, 3], 89), 100, 10) == (None, "meter_stale")
    assert read_meter(Meter([1, 2, 3], 104), 100, 10) == ((1, 2, 3), None)   # small clock skew
    assert read_meter(Meter([1, 2, 3], 106), 100, 10) == (None, "meter_invalid")
    assert read_meter(Meter((1, 2, 3), 100.5), 100, 10) == ((1, 2, 3), None)


def test_site_limit_rules():
    notes = []
    assert read_site_limit(None, 100, notes) is None
    assert read_site_limit({"max_da": None, "expires_s": None}, 100, notes) is None
    assert read_site_limit({"max_da": 200, "expires_s": 101}, 100, notes) == 200
    assert read_site_limit({"max_da": 200, "expires_s": 100}, 100, notes) is None
    assert read_site_limit({"max_da": -1, "expires_s": 500}, 100, notes) == 0
    assert notes and "site_limit.max_da" in notes[0]


def test_one_bad_session_does_not_stop_the_others():
    t = flat_tree(3, grid_da=300)
    rows = [session("CP0"), {"key": None}, session("CP2")]
    r = run(t, rows)
    assert limit_of(r, "CP0") == 150 and limit_of(r, "CP2") == 150
    assert "sessions[1].key" in r.status["notes"][0]


def test_meter_phases_not_available():
    assert read_meter(Meter([1, None, 3], 100), 100, 10) == ((1, None, 3), "meter_partial")
    assert read_meter(Meter([None, None, None], 100), 100, 10) == (None, "meter_invalid")
    assert read_meter(Meter([1, None, 3], 80), 100, 10) == (None, "meter_stale")
