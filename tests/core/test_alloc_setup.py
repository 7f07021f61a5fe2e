# Configuration of the load management and the circuit tree built from the topology.
from edge.core.alloc_config import AllocConfig
from edge.core.circuits import FULL, ONE, CircuitTree, circuits_from_site
from edge.core.errors import ValidationError
from edge.core.topology import Site
from test_alloc_kit import connector, run, session, site_dict


def _refused(fn, field_part, value_part=None):
    try:
        fn()
    except ValidationError as e:
        text = str(e)
        assert field_part in text, text
        if value_part is not None:
            assert value_part in text, text
        return text
    raise AssertionError("no ValidationError for " + field_part)


def test_config_defaults_and_amps_become_deciamps():
    cfg = AllocConfig.from_dict(None)
    assert cfg.meter_max_age_s == 10 and cfg.failsafe_non_ev_da is None
    assert cfg.ramp_step_da == 60 and cfg.phase_hold_s == 60 and cfg.rotate_after_s == 900
    cfg = AllocConfig.from_dict({"ramp_step_a": 2.45, "failsafe_non_ev_a": [10, 12.5, 0],
                                 "phase_up_margin_a": 0, "rotate_after_s": 0})
    assert cfg.ramp_step_da == 25
    assert cfg.failsafe_non_ev_da == (100, 125, 0)
    assert cfg.rotate_after_s == 0 and cfg.phase_up_margin_da == 0
    assert AllocConfig.from_dict({"failsafe_non_ev_a": 20}).failsafe_non_ev_da == (200, 200, 200)


def test_config_of_the_non_ev_estimate_and_small_raises():
    cfg = AllocConfig.from_dict(None)
    assert cfg.sample_wait_s == 60 and cfg.small_raise_after_s == 300 and cfg.non_ev_deadband_da == 10
    cfg = AllocConfig.from_dict({"sample_wait_s": 30, "small_raise_after_s": 0, "non_ev_deadband_a": 0.5})
    assert cfg.sample_wait_s == 30 and cfg.small_raise_after_s == 0 and cfg.non_ev_deadband_da == 5
    _refused(lambda: AllocConfig.from_dict({"sample_wait_s": -1}), "load_management.sample_wait_s", "(got -1)")
    _refused(lambda: AllocConfig.from_dict({"small_raise_after_s": 1.5}), "load_management.small_raise_after_s")
    _refused(lambda: AllocConfig.from_dict({"non_ev_deadband_a": "1"}), "load_management.non_ev_deadband_a")


def test_config_errors_name_the_field_and_value():
    _refused(lambda: AllocConfig.from_dict({"ramp_step": 5}), "load_management.ramp_step", "unknown field")
    _refused(lambda: AllocConfig.from_dict({"meter_max_age_s": "10"}), "load_management.meter_max_age_s", "'10'")
    _refused(lambda: AllocConfig.from_dict({"meter_max_age_s": 0}), "load_management.meter_max_age_s", "1 or more")
    _refused(lambda: AllocConfig.from_dict({"ramp_step_a": 0}), "load_management.ramp_step_a", "(got 0)")
    _refused(lambda: AllocConfig.from_dict({"failsafe_non_ev_a": [1, 2]}), "load_management.failsafe_non_ev_a")
    _refused(lambda: AllocConfig.from_dict({"failsafe_non_ev_a": [1, -2, 3]}),
             "load_management.failsafe_non_ev_a[1]")
    _refused(lambda: AllocConfig.from_dict({"min_change_a": True}), "load_management.min_change_a")
    _refused(lambda: AllocConfig.from_dict([]), "load_management", "must be an object")


def _site(**kw):
    groups = [
        {"id": "garage", "max_current_a": 40, "stations": [
            {"id": "CP1", "max_current_a": 20, "connectors": [
                connector(1, max_a=16), connector(2, phases=1, wiring="L2", max_a=16)]},
            {"id": "CP2", "connectors": [connector(1, wiring="L3L1L2", max_a=32, switch=True)]}]},
        {"id": "yard", "stations": [{"id": "CP3", "connectors": [connector(1, max_a=11)]}]},
    ]
    return Site.from_dict(site_dict(groups, grid_a=63, margin_a=1, **kw))


def test_tree_from_the_topology():
    tree = circuits_from_site(_site())
    assert tree.root.id == "grid" and tree.root.max_da == (630, 630, 630) and tree.root.margin_da == 10
    assert [c.key for c in tree.connectors] == [("CP1", 1), ("CP1", 2), ("CP2", 1), ("CP3", 1)]
    cp2 = tree.connectors[2]
    assert cp2.wiring == (2, 0, 1) and cp2.can_switch_phases and cp2.circuit.id == "station:CP2"
    assert cp2.circuit.parent.id == "group:garage" and cp2.circuit.parent.parent is tree.root
    layout = tree.compile()
    labels = [layout.label[k] for k in layout.path[layout.index[("CP1", 2)]][FULL]]
    # Root first; the garage's 40 A can bind (16+16+32 on L2 > 40), CP1's 20 A too.
    assert labels == [("grid", 1), ("group:garage", 1), ("station:CP1", 1)]
    one = [layout.label[k] for k in layout.path[layout.index[("CP2", 1)]][ONE]]
    assert one == [("grid", 2), ("group:garage", 2)]


def test_limits_that_can_never_bind_are_left_out():
    layout = circuits_from_site(_site()).compile()
    names = set(layout.label)
    # The yard (63 A default) and CP3's own station (11 A = its connector) never bind.
    assert not any(n[0] in ("group:yard", "station:CP3", "station:CP2") for n in names)
    # CP1's 20 A binds on L2 (16 + 16) but not on L1 (16 only).
    assert ("station:CP1", 1) in names and ("station:CP1", 0) not in names


def test_static_external_limit_and_power_limit_in_the_tree():
    tree = circuits_from_site(_site(power_w=22000), external_limit_da=400)
    assert tree.root.max_da == (400, 400, 400) and tree.root.max_power_w == 22000
    layout = tree.compile()
    assert layout.cap[layout.root_sum] == 22000 * 10 // 230
    r = run(tree, [session("CP2"), session("CP3")])
    a = r.targets[("CP2", 1)][0]
    b = r.targets[("CP3", 1)][0]
    # 22 kW is 956 dA summed over phases, 926 after the margin: 308 dA per phase
    # for two 3-phase cars; the 11 A car is capped at its maximum, the other takes the rest.
    assert b == 110 and a == 198


def test_tree_errors_name_the_field():
    t = CircuitTree()
    _refused(lambda: t.compile(), "circuits", "no root")
    _refused(lambda: t.add_circuit("grid", None, (100, None, 100)), "max_da", "every phase")
    t.add_circuit("grid", None, 100)
    _refused(lambda: t.add_circuit("grid", None, 100), "circuits['grid']", "duplicate")
    _refused(lambda: t.add_circuit("x", None, 100), "circuits['x'].parent", "already has a root")
    _refused(lambda: t.add_circuit("x", "nope", 100), "circuits['x'].parent", "'nope'")
    _refused(lambda: t.add_circuit("x", "grid", -1), "circuits['x'].max_da", "(got -1)")
    _refused(lambda: t.add_circuit("x", "grid", "16A"), "circuits['x'].max_da", "'16A'")
    _refused(lambda: t.add_connector(("A", 1), "grid", 3, (0, 1, 1), 60, 160), "wiring", "(0, 1, 1)")
    _refused(lambda: t.add_connector(("A", 1), "grid", 1, (3,), 60, 160), "wiring")
    _refused(lambda: t.add_connector(("A", 1), "grid", 3, (0, 1, 2), 200, 160), "min_da", "(got 200)")
    _refused(lambda: t.add_connector(("A", 1), "grid", 1, (0,), 60, 160, True), "can_switch_phases")
    _refused(lambda: t.add_connector(("A", 1), "nope", 1, (0,), 60, 160), "circuit", "unknown")
    t.add_connector(("A", 1), "grid", 1, (0,), 60, 160)
    _refused(lambda: t.add_connector(("A", 1), "grid", 1, (0,), 60, 160), "connectors[('A', 1)]", "duplicate")
    _refused(lambda: CircuitTree(voltage_v=12), "voltage_v", "(got 12)")
    _refused(lambda: circuits_from_site(_site(), external_limit_da=-5), "external_limit_da")


def test_three_phase_only_circuit_with_one_limit_is_one_constraint():
    groups = [{"id": "g", "stations": [
        {"id": "T", "max_current_a": 20, "connectors": [connector(1, wiring="L1L2L3", max_a=16),
                                                         connector(2, wiring="L3L1L2", max_a=16)]},
        {"id": "S", "max_current_a": 20, "connectors": [connector(1, max_a=16, switch=True),
                                                         connector(2, max_a=16)]}]}]
    tree = circuits_from_site(Site.from_dict(site_dict(groups, grid_a=63)))
    layout = tree.compile()
    names = [layout.label[k] for k in layout.path[layout.index[("T", 2)]][FULL]]
    # The group (63 A, 4 x 16 A below, one of them switching) keeps its phases.
    assert names == [("grid", 2), ("grid", 0), ("grid", 1), ("group:g", 2), ("group:g", 0),
                     ("group:g", 1), ("station:T", "3p")]
    # A switching connector may load one phase only: its station keeps a limit per phase.
    names = [layout.label[k] for k in layout.path[layout.index[("S", 2)]][FULL]]
    assert names[6:] == [("station:S", 0), ("station:S", 1), ("station:S", 2)]
    r = run(tree, [session("T", 1), session("T", 2), session("S", 1), session("S", 2)])
    assert r.targets[("T", 1)] == (100, 3) and r.targets[("T", 2)] == (100, 3)
    assert r.targets[("S", 1)][0] + r.targets[("S", 2)][0] == 200
