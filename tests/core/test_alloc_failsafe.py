# Fail-safe: the grid meter goes missing, stale or mad; the site falls back and recovers.
from edge.core.alloc_config import AllocConfig
from edge.core.allocation import allocate
from edge.core.circuits import CircuitTree
from test_alloc_kit import Meter, flat_tree, limit_of, run, sent_of, session


def _cfg(**kw):
    base = {"meter_max_age_s": 10, "failsafe_non_ev_da": (200, 200, 200), "raise_holdoff_s": 10,
            "ramp_step_da": 60}
    base.update(kw)
    return AllocConfig(**base)


def test_no_meter_reading_means_fail_safe_with_the_configured_budget():
    t = flat_tree(2, grid_da=400, max_da=320, margin_da=10)
    r = allocate(t, [session("CP0"), session("CP1")], None, 1000, None, _cfg())
    assert r.status["mode"] == "failsafe" and r.status["reason"] == "meter_missing"
    # 400 - 10 margin - 200 assumed other load = 190 for the EVs.
    assert limit_of(r, "CP0") + limit_of(r, "CP1") == 190


def test_without_a_configured_budget_fail_safe_gives_evs_nothing():
    t = flat_tree(2, grid_da=400, max_da=320)
    r = allocate(t, [session("CP0"), session("CP1")], None, 1000, None, AllocConfig())
    assert r.status["mode"] == "failsafe"
    assert limit_of(r, "CP0") == 0 and limit_of(r, "CP1") == 0
    assert r.status["overloaded"] == []


def test_meter_disappearing_triggers_fail_safe_within_poll_interval_plus_max_age():
    cfg = _cfg(meter_max_age_s=10)
    t = flat_tree(2, grid_da=400, max_da=320)
    sessions = [session("CP0", drawn_da=(0, 0, 0)), session("CP1", drawn_da=(0, 0, 0))]
    poll_s = 3
    last_reading_s = 1000
    state = None
    now = 990
    went_failsafe_at = None
    while now < 1040:
        # The meter answers until 1000 and then never again; the loop keeps polling.
        meter = Meter([0, 0, 0], min(now, last_reading_s))
        r = allocate(t, sessions, meter, now, state, cfg)
        state = r.state
        if r.status["mode"] == "failsafe":
            assert r.status["reason"] == "meter_stale"
            if went_failsafe_at is None:
                went_failsafe_at = now
                assert r.status["since_s"] == now
            assert limit_of(r, "CP0") + limit_of(r, "CP1") <= 400 - 200
            # Cuts are not ramped: what is sent drops with the target at once.
            assert sent_of(r, "CP0") <= limit_of(r, "CP0")
        else:
            assert now - last_reading_s <= 10
            assert went_failsafe_at is None
        now += poll_s
    assert went_failsafe_at is not None
    assert last_reading_s + 10 < went_failsafe_at <= last_reading_s + 10 + poll_s


def test_invalid_readings_are_fail_safe():
    t = flat_tree(1, grid_da=400)
    bad = [Meter([1, 2], 1000), Meter([1, 2, -3], 1000), Meter([1, True, 3], 1000),
           Meter(["1", 2, 3], 1000), Meter(None, 1000), Meter([1, 2, 3], None),
           Meter([1, 2, 3], float("nan")), Meter([1, 2, 3], 5000), Meter([1, 2, 3], "now")]
    for m in bad:
        r = allocate(t, [session("CP0")], m, 1000, None, _cfg())
        assert r.status["mode"] == "failsafe", m.current_da
        assert r.status["reason"] == "meter_invalid", (m.current_da, m.at_s)


def test_meter_as_a_dict_is_read_too():
    t = flat_tree(1, grid_da=400)
    r = allocate(t, [session("CP0")], {"current_da": [10, 10, 10], "at_s": 999}, 1000, None, _cfg())
    assert r.status["mode"] == "normal"


def test_recovery_when_data_returns_raises_slowly():
    cfg = _cfg()
    t = flat_tree(1, grid_da=400, max_da=320)
    s = [session("CP0")]   # no samples: assumed to draw what it was sent
    r = run(t, s, now_s=1000, cfg=cfg)
    assert sent_of(r, "CP0") == 320
    r = run(t, s, now_s=1020, meter_at_s=1000, state=r.state, cfg=cfg)
    assert r.status["mode"] == "failsafe" and sent_of(r, "CP0") == 200
    r = run(t, s, grid_da=(200, 200, 200), now_s=1022, state=r.state, cfg=cfg)
    assert r.status == dict(r.status, mode="normal", reason=None, since_s=1022)
    assert limit_of(r, "CP0") == 320
    # The raise waits for the hold-off after the cut at 1020, then steps up.
    assert sent_of(r, "CP0") == 200
    r = run(t, s, grid_da=(200, 200, 200), now_s=1030, state=r.state, cfg=cfg)
    assert sent_of(r, "CP0") == 260
    assert r.changed == {("CP0", 1): (260, 3)}
    r = run(t, s, grid_da=(260, 260, 260), now_s=1035, state=r.state, cfg=cfg)
    assert sent_of(r, "CP0") == 260 and r.changed == {}
    r = run(t, s, grid_da=(260, 260, 260), now_s=1040, state=r.state, cfg=cfg)
    assert sent_of(r, "CP0") == 320


def test_fail_safe_without_budget_under_an_external_cap_is_not_an_overload():
    t = flat_tree(2, grid_da=400, max_da=320)
    cap = {"max_da": 250, "expires_s": 5000}
    r = allocate(t, [session("CP0"), session("CP1")], None, 1000, None, AllocConfig(), cap)
    assert r.status["mode"] == "failsafe" and r.status["overloaded"] == []
    assert limit_of(r, "CP0") == 0 and limit_of(r, "CP1") == 0


def test_fail_safe_still_reserves_uncontrollable_wallboxes():
    t = flat_tree(3, grid_da=400, max_da=160, margin_da=10)
    s = [session("CP0", controllable=False), session("CP1"), session("CP2")]
    r = allocate(t, s, None, 1000, None, _cfg())
    # 400 - 10 - 200 assumed other load - 160 for the box that ignores us = 30: below a minimum.
    assert r.targets[("CP0", 1)] == (160, 3)
    assert limit_of(r, "CP1") == 0 and limit_of(r, "CP2") == 0
    assert r.status["paused"] == [("CP1", 1), ("CP2", 1)]


def test_a_phase_the_meter_cannot_read_is_fail_safe_on_that_phase_only():
    t = CircuitTree()
    t.add_circuit("grid", None, 400)
    t.add_connector(("A", 1), "grid", 1, (0,), 60, 320)
    t.add_connector(("B", 1), "grid", 1, (1,), 60, 320)
    t.add_connector(("C", 1), "grid", 3, (0, 1, 2), 60, 320)
    s = [session("A", drawn_da=(0, 0, 0)), session("B", drawn_da=(0, 0, 0)), session("C", drawn_da=(0, 0, 0))]
    r = allocate(t, s, Meter([100, None, 50], 1000), 1000, None, _cfg())
    assert r.status["mode"] == "failsafe" and r.status["reason"] == "meter_partial"
    # L1 measured: 400 - 100 = 300 for A and C; L2 unknown: 400 - 200 assumed = 200 for B and C.
    assert limit_of(r, "A") == 200 and limit_of(r, "C") == 100 and limit_of(r, "B") == 100
    # Without a configured budget the unknown phase gives nothing: C (3-phase) pauses, A does not.
    r = allocate(t, s, Meter([100, None, 50], 1000), 1000, None, AllocConfig())
    assert limit_of(r, "A") == 300 and limit_of(r, "B") == 0 and limit_of(r, "C") == 0
    assert r.status["overloaded"] == []
