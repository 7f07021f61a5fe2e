# Ramping and de-duplication of what is sent to wallboxes.
from edge.core.alloc_config import AllocConfig
from edge.core.alloc_ramp import ramp
from edge.core.alloc_state import Sent
from test_alloc_kit import flat_tree, run, sent_of, session

CFG = AllocConfig(raise_holdoff_s=10, ramp_step_da=60, min_change_da=10)


def test_first_limit_and_cuts_are_sent_at_once():
    v, rec = ramp(160, 3, None, 60, 100, CFG)
    assert v == 160 and rec.changed_s == 100
    prev = Sent(160, 3, 100)
    v, rec = ramp(90, 3, prev, 60, 101, CFG)
    assert v == 90 and rec.limit_da == 90 and rec.changed_s == 101
    v, rec = ramp(89, 3, Sent(90, 3, 101), 60, 101, CFG)
    assert v == 89     # even a small cut is sent


def test_raises_wait_for_the_hold_off_and_step():
    prev = Sent(60, 3, 100)
    v, rec = ramp(320, 3, prev, 60, 105, CFG)
    assert v == 60 and rec is prev
    v, rec = ramp(320, 3, prev, 60, 110, CFG)
    assert v == 120 and rec.changed_s == 110
    v, rec = ramp(150, 3, rec, 60, 120, CFG)
    assert v == 150


def test_small_raises_are_not_sent():
    prev = Sent(150, 3, 100)
    v, rec = ramp(159, 3, prev, 60, 200, CFG)
    assert v == 150 and rec is prev
    v, rec = ramp(160, 3, prev, 60, 200, CFG)
    assert v == 160


def test_a_small_raise_is_sent_once_the_limit_has_stood_long():
    # 100 cars each 0.5 A below their share would leave 50 A unused for good.
    prev = Sent(150, 3, 100)
    v, rec = ramp(155, 3, prev, 60, 399, CFG)
    assert v == 150 and rec is prev
    v, rec = ramp(155, 3, prev, 60, 400, CFG)
    assert v == 155 and rec.changed_s == 400
    never = AllocConfig(raise_holdoff_s=10, ramp_step_da=60, min_change_da=10, small_raise_after_s=0)
    assert ramp(155, 3, prev, 60, 10 ** 6, never)[0] == 150


def test_leaving_a_pause_jumps_to_at_least_the_minimum():
    cfg = AllocConfig(raise_holdoff_s=0, ramp_step_da=20, min_change_da=10)
    v, rec = ramp(160, 3, Sent(0, 3, 0), 60, 50, cfg)
    assert v == 60
    v, rec = ramp(60, 3, Sent(0, 3, 0), 60, 50, cfg)
    assert v == 60


def test_phase_change_is_sent_at_once():
    v, rec = ramp(160, 1, Sent(60, 3, 100), 60, 101, CFG)
    assert v == 160 and rec.phases == 1


def test_allocation_sends_only_changes():
    t = flat_tree(2, grid_da=300, max_da=160)
    s = [session("CP0"), session("CP1")]
    r = run(t, s, now_s=100, cfg=CFG)
    assert r.changed == {("CP0", 1): (150, 3), ("CP1", 1): (150, 3)}
    r = run(t, s, now_s=101, state=r.state, cfg=CFG)
    assert r.changed == {}
    assert r.limits == {("CP0", 1): (150, 3), ("CP1", 1): (150, 3)}


def test_idle_connectors_are_set_to_zero_and_a_new_session_starts_at_once():
    t = flat_tree(2, grid_da=300, max_da=160)
    r = run(t, [session("CP0")], now_s=100, cfg=CFG)
    assert r.limits[("CP1", 1)] == (0, 3)
    assert sent_of(r, "CP0") == 160
    r = run(t, [session("CP0"), session("CP1")], now_s=120, state=r.state, cfg=CFG)
    # CP0 is cut to make room at once; CP1 leaves 0 for its first step at once.
    assert r.changed == {("CP0", 1): (150, 3), ("CP1", 1): (60, 3)}
    r = run(t, [session("CP0"), session("CP1")], now_s=125, state=r.state, cfg=CFG)
    assert r.changed == {}
    assert r.targets[("CP1", 1)] == (150, 3)
    r = run(t, [session("CP0"), session("CP1")], now_s=130, state=r.state, cfg=CFG)
    assert r.changed == {("CP1", 1): (120, 3)}
    r = run(t, [session("CP0"), session("CP1")], now_s=140, state=r.state, cfg=CFG)
    assert r.changed == {("CP1", 1): (150, 3)}


def test_a_phase_switch_is_a_change_sent_at_once():
    from edge.core.circuits import CircuitTree
    t = CircuitTree()
    t.add_circuit("grid", None, (200, 100, 100))
    t.add_connector(("S", 1), "grid", 3, (0, 1, 2), 60, 160, True)
    cfg = AllocConfig(raise_holdoff_s=30, phase_hold_s=0)
    r = run(t, [session("S")], grid_da=(0, 0, 0), now_s=100, cfg=cfg)
    assert r.changed == {("S", 1): (100, 3)}
    # Other load on L2/L3 leaves room for one phase only: switched and sent in the
    # same cycle, although 160 on one phase is a raise inside the hold-off.
    r = run(t, [session("S", drawn_da=(100, 100, 100))], grid_da=(100, 150, 150), now_s=101,
            state=r.state, cfg=cfg)
    assert r.changed == {("S", 1): (160, 1)}
