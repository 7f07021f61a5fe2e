# Phases: wiring rotation of single- and three-phase connectors, 1/3 phase switching.
from edge.core.alloc_config import AllocConfig
from edge.core.circuits import CircuitTree
from test_alloc_kit import connector, limit_of, phase_load, run, session, tree_of


def test_three_single_phase_wallboxes_on_rotated_wiring_share_the_site_phases():
    # One station feeds three single-phase wallboxes wired to L1, L2 and L3.
    groups = [{"id": "g", "stations": [
        {"id": "W1", "connectors": [connector(1, phases=1, wiring="L1", max_a=32)]},
        {"id": "W2", "connectors": [connector(1, phases=1, wiring="L2", max_a=32)]},
        {"id": "W3", "connectors": [connector(1, phases=1, wiring="L3", max_a=32)]}]}]
    t = tree_of(groups, grid_a=25)
    sessions = [session("W1", drawn_da=(0, 0, 0)), session("W2", drawn_da=(0, 0, 0)),
                session("W3", drawn_da=(0, 0, 0))]
    # Other load: 5 A on L1, 12 A on L2, nothing on L3.
    r = run(t, sessions, grid_da=(50, 120, 0))
    assert limit_of(r, "W1") == 200 and limit_of(r, "W2") == 130 and limit_of(r, "W3") == 250
    assert r.targets[("W2", 1)] == (130, 1)
    assert phase_load(r, t) == [200, 130, 250]


def test_two_boxes_on_one_phase_share_it_and_the_third_phase_box_is_unaffected():
    groups = [{"id": "g", "stations": [
        {"id": "A", "connectors": [connector(1, phases=1, wiring="L1", max_a=32)]},
        {"id": "B", "connectors": [connector(1, phases=1, wiring="L1", max_a=32)]},
        {"id": "C", "connectors": [connector(1, phases=1, wiring="L2", max_a=32)]}]}]
    t = tree_of(groups, grid_a=32)
    r = run(t, [session("A"), session("B"), session("C")])
    assert limit_of(r, "A") == 160 and limit_of(r, "B") == 160 and limit_of(r, "C") == 320


def test_three_phase_connectors_with_rotated_wiring_load_every_phase_once():
    groups = [{"id": "g", "stations": [
        {"id": "R0", "connectors": [connector(1, wiring="L1L2L3", max_a=32)]},
        {"id": "R1", "connectors": [connector(1, wiring="L2L3L1", max_a=32)]},
        {"id": "X", "connectors": [connector(1, phases=1, wiring="L2", max_a=32)]}]}]
    t = tree_of(groups, grid_a=30)
    r = run(t, [session("R0"), session("R1"), session("X")])
    # L2 carries all three: 10 A each; L1 and L3 carry only the two 3-phase ones.
    assert [limit_of(r, s) for s in ("R0", "R1", "X")] == [100, 100, 100]
    assert phase_load(r, t) == [200, 300, 200]


def test_switched_connector_uses_the_site_phase_of_its_first_wire():
    t = CircuitTree()
    t.add_circuit("grid", None, 200)
    t.add_connector(("S", 1), "grid", 3, (2, 0, 1), 60, 160, True)   # phase 1 is site L3
    # L1 and L2 nearly full of other load: only one phase fits, and it must be L3.
    r = run(t, [session("S", drawn_da=(0, 0, 0))], grid_da=(180, 180, 0))
    assert r.targets[("S", 1)] == (160, 1)
    assert phase_load(r, t) == [0, 0, 160]
    assert r.status["one_phase"] == [("S", 1)]


def _draws(state):
    rec = state.sent.get(("S", 1)) if state is not None else None
    if rec is None:
        return (0, 0, 0)
    if rec.phases == 1:
        return (rec.limit_da, 0, 0)
    return (rec.limit_da,) * 3


def _switch_site():
    t = CircuitTree()
    t.add_circuit("grid", None, 200)
    t.add_connector(("S", 1), "grid", 3, (0, 1, 2), 60, 160, True)
    return t


def test_three_phase_session_goes_to_one_phase_and_back_with_hold_and_margin():
    cfg = AllocConfig(phase_hold_s=60, phase_up_margin_da=10, raise_holdoff_s=0)
    t = _switch_site()

    def step(now, other_l2_l3, state):
        # The car draws what it was last sent and reports it; the meter sees both.
        drawn = _draws(state)
        grid = (drawn[0], other_l2_l3 + drawn[1], other_l2_l3 + drawn[2])
        r = run(t, [session("S", drawn_da=drawn)], grid_da=grid, now_s=now, state=state, cfg=cfg)
        return r, r.targets[("S", 1)]

    r, tg = step(1000, 0, None)
    assert tg == (160, 3)
    # Other load leaves 4 A on L2/L3: the 6 A three-phase minimum no longer fits, one phase does.
    r, tg = step(1010, 160, r.state)
    assert tg == (160, 1)
    # Room comes back at once, but the hold keeps it on one phase until 60 s have passed.
    r, tg = step(1020, 0, r.state)
    assert tg == (160, 1)
    r, tg = step(1069, 0, r.state)
    assert tg == (160, 1)
    # Hold over, but only exactly the minimum fits on three phases: the margin keeps it on one.
    r, tg = step(1071, 140, r.state)
    assert tg == (160, 1)
    r, tg = step(1072, 130, r.state)
    assert tg == (70, 3)
    # Squeezed again right after switching up: held on three phases, so it pauses instead.
    r, tg = step(1080, 160, r.state)
    assert tg == (0, 3)
    assert r.status["paused"] == [("S", 1)]
    r, tg = step(1133, 160, r.state)
    assert tg == (160, 1)


def test_a_new_session_may_start_on_one_phase_and_that_starts_the_hold():
    cfg = AllocConfig(phase_hold_s=60)
    t = _switch_site()
    s = [session("S")]   # no samples: assumed to draw what it was sent
    r = run(t, s, grid_da=(0, 170, 170), now_s=500, cfg=cfg)
    assert r.targets[("S", 1)] == (160, 1)
    r = run(t, s, grid_da=(160, 0, 0), now_s=530, state=r.state, cfg=cfg)
    assert r.targets[("S", 1)] == (160, 1)
    r = run(t, s, grid_da=(160, 0, 0), now_s=560, state=r.state, cfg=cfg)
    assert r.targets[("S", 1)] == (160, 3)


def test_non_switching_connector_is_paused_not_switched():
    t = CircuitTree()
    t.add_circuit("grid", None, 200)
    t.add_connector(("N", 1), "grid", 3, (0, 1, 2), 60, 160, False)
    r = run(t, [session("N", drawn_da=(0, 0, 0))], grid_da=(0, 160, 160))
    assert r.targets[("N", 1)] == (0, 3)


def test_switching_connector_without_minimum_goes_where_it_gets_current():
    # Found by a property: with a 0 A minimum, three phases "fit" even with L2 and
    # L3 full, which would leave it 0 A although one phase has room.
    t = CircuitTree()
    t.add_circuit("grid", None, (100, 0, 0))
    t.add_connector(("S", 1), "grid", 3, (0, 1, 2), 0, 160, True)
    r = run(t, [session("S")])
    assert r.targets[("S", 1)] == (100, 1)
