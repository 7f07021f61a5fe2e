# Why each connector gets what it gets: one scenario per kind of reason.
from edge.core.alloc_config import AllocConfig
from edge.core.allocation import allocate
from edge.core.circuits import CircuitTree
from test_alloc_kit import connector, flat_tree, limit_of, run, session, tree_of


def _why(r, station, cid=1):
    return r.reasons()[(station, cid)]


def test_prioritised_three_phase_cars_pause_on_full_l3_while_a_car_on_l2_charges():
    # The demo's case: the building loads L3 heavily. Two prioritised fleet cars on
    # three-phase boxes need 6 A on L3 each, which L3 no longer has; a card user on
    # a one-phase box wired to L2 charges, and nothing is wrong.
    groups = [{"id": "garage", "stations": [
        {"id": "FLEET1", "connectors": [connector(1, max_a=16)]},
        {"id": "FLEET2", "connectors": [connector(1, max_a=16)]},
        {"id": "CARD", "connectors": [connector(1, phases=1, wiring="L2", max_a=16)]}]}]
    t = tree_of(groups, grid_a=40, margin_a=1)
    sessions = [session("FLEET1", started_s=1, prioritised=True),
                session("FLEET2", started_s=2, prioritised=True),
                session("CARD", started_s=3)]
    r = run(t, sessions, grid_da=(90, 60, 340))
    assert limit_of(r, "FLEET1") == 0 and limit_of(r, "FLEET2") == 0
    assert limit_of(r, "CARD") == 160
    for st in ("FLEET1", "FLEET2"):
        why = _why(r, st)
        assert why["code"] == "paused_no_fit" and why["paused"] is True
        assert (why["circuit"], why["phase"]) == ("grid", "L3")
        # 40 A - 1 A margin - 34 A building load = 5 A left, below the 6 A minimum.
        assert why["left_da"] == 50
        assert "does not fit on grid L3" in why["text"]
    assert _why(r, "CARD")["code"] == "at_max"


def test_a_car_held_by_a_full_group_phase_names_the_group():
    groups = [{"id": "garage", "max_current_a": 20, "stations": [
        {"id": "G1", "connectors": [connector(1, max_a=32)]},
        {"id": "G2", "connectors": [connector(1, max_a=32)]}]},
        {"id": "yard", "stations": [{"id": "Y1", "connectors": [connector(1, max_a=16)]}]}]
    t = tree_of(groups, grid_a=63)
    r = run(t, [session("G1"), session("G2"), session("Y1")])
    assert limit_of(r, "G1") == 100
    why = _why(r, "G1")
    assert why["code"] == "limited" and why["circuit"] == "group:garage"
    assert why["phase"] in ("all", "L1", "L2", "L3") and why["paused"] is False
    assert _why(r, "Y1")["code"] == "at_max"


def test_a_station_limit_and_the_grid_phase_are_named():
    t = flat_tree(2, grid_da=250, max_da=160, station_da=100)
    r = run(t, [session("CP0"), session("CP1")])
    assert _why(r, "CP0")["circuit"] == "CP0" and _why(r, "CP0")["code"] == "limited"
    t = flat_tree(2, grid_da=250, max_da=160)
    r = run(t, [session("CP0"), session("CP1")], grid_da=(0, 0, 0))
    assert limit_of(r, "CP0") + limit_of(r, "CP1") == 250
    assert _why(r, "CP0")["code"] == "limited" and _why(r, "CP0")["circuit"] == "grid"


def test_a_car_that_draws_less_is_at_its_demand():
    t = flat_tree(1, grid_da=630, max_da=320)
    cfg = AllocConfig(raise_holdoff_s=0)
    r = run(t, [session("CP0")], now_s=1000, cfg=cfg)
    r = run(t, [session("CP0", drawn_da=(80, 80, 80))], now_s=1100, state=r.state, cfg=cfg)
    assert limit_of(r, "CP0") == 100
    assert _why(r, "CP0")["code"] == "at_demand"


def test_rotation_names_the_turn():
    t = flat_tree(3, grid_da=130, min_da=60, max_da=160)
    cfg = AllocConfig(rotate_after_s=600, raise_holdoff_s=0)
    sessions = [session("CP0", started_s=1), session("CP1", started_s=2), session("CP2", started_s=3)]
    r = run(t, sessions, now_s=1000, cfg=cfg)
    why = _why(r, "CP2")
    assert why["code"] == "paused_rotation" and why["turn_s"] == 1600
    assert why["circuit"] == "grid"
    # Without rotation the latest arrival simply does not fit.
    r = run(t, sessions, now_s=1000, cfg=AllocConfig(rotate_after_s=0))
    assert _why(r, "CP2")["code"] == "paused_no_fit"


def test_fail_safe_is_said_as_the_cause():
    t = flat_tree(2, grid_da=400, max_da=320, margin_da=10)
    cfg = AllocConfig(failsafe_non_ev_da=(200, 200, 200))
    r = allocate(t, [session("CP0"), session("CP1")], None, 1000, None, cfg)
    assert _why(r, "CP0")["code"] == "failsafe" and _why(r, "CP0")["paused"] is False
    r = allocate(t, [session("CP0"), session("CP1")], None, 1000, None, AllocConfig())
    why = _why(r, "CP0")
    assert why["code"] == "failsafe" and why["paused"] is True


def test_the_external_cap_is_said_as_the_cause():
    t = flat_tree(2, grid_da=630, max_da=320)
    r = run(t, [session("CP0"), session("CP1")], site_limit={"max_da": 200, "expires_s": 2000})
    assert limit_of(r, "CP0") == 100
    assert _why(r, "CP0")["code"] == "external_limit"
    r = run(t, [session("CP0"), session("CP1")], site_limit={"max_da": 100, "expires_s": 2000})
    assert _why(r, "CP1")["code"] == "external_limit" and _why(r, "CP1")["paused"] is True


def test_uncontrollable_and_idle():
    t = flat_tree(3, grid_da=630, max_da=160)
    r = run(t, [session("CP0", controllable=False), session("CP1")])
    assert _why(r, "CP0")["code"] == "uncontrollable"
    assert _why(r, "CP2")["code"] == "idle"
    assert _why(r, "CP1")["code"] == "at_max"


def test_a_phase_switching_car_paused_on_both_modes_names_a_full_phase():
    t = CircuitTree()
    t.add_circuit("grid", None, (100, 30, 30))
    t.add_circuit("st", "grid", None)
    t.add_connector(("A", 1), "st", 3, (1, 2, 0), 60, 160, True)
    r = run(t, [session("A")])
    why = _why(r, "A")
    assert why["code"] == "paused_no_fit" and why["circuit"] == "grid" and why["phase"] == "L2"


def test_a_power_limit_is_named():
    t = CircuitTree()
    t.add_circuit("grid", None, 630, 11040)     # 11.04 kW: 48 A summed at 230 V
    t.add_circuit("st", "grid", None)
    t.add_connector(("A", 1), "st", 3, (0, 1, 2), 60, 320)
    r = run(t, [session("A")])
    assert limit_of(r, "A") == 160
    why = _why(r, "A")
    assert why["code"] == "limited" and why["phase"] == "power"
