# Pausing and rotation: nobody starves when there is not enough for every minimum.
from edge.core.alloc_config import AllocConfig
from edge.core.circuits import CircuitTree
from test_alloc_kit import flat_tree, run, session


def _charging(r):
    return sorted(k[0] for k, (v, _) in r.targets.items() if v > 0)


def _three_for_two(rotate_after_s):
    # Room for two minimums (2 x 6 A) but not three.
    t = flat_tree(3, grid_da=130, min_da=60, max_da=160)
    cfg = AllocConfig(rotate_after_s=rotate_after_s, raise_holdoff_s=0)
    sessions = [session("CP0", started_s=1), session("CP1", started_s=2), session("CP2", started_s=3)]
    return t, cfg, sessions


def test_paused_sessions_rotate_round_robin():
    t, cfg, sessions = _three_for_two(600)
    seen = []
    state = None
    for now in (1000, 1300, 1600, 1900, 2200, 2500, 2800):
        r = run(t, sessions, now_s=now, state=state, cfg=cfg)
        state = r.state
        seen.append(_charging(r))
    assert seen == [["CP0", "CP1"], ["CP0", "CP1"], ["CP0", "CP2"], ["CP0", "CP2"],
                    ["CP1", "CP2"], ["CP1", "CP2"], ["CP0", "CP1"]]
    # Every session charged in at least two of the three rotation slots.
    for name in ("CP0", "CP1", "CP2"):
        assert sum(1 for c in seen[::2] if name in c) >= 2


def test_without_rotation_the_latest_arrival_keeps_waiting():
    t, cfg, sessions = _three_for_two(0)
    state = None
    for now in range(1000, 5000, 500):
        r = run(t, sessions, now_s=now, state=state, cfg=cfg)
        state = r.state
        assert _charging(r) == ["CP0", "CP1"]
        assert r.status["paused"] == [("CP2", 1)]


def test_a_charging_session_is_not_displaced_by_a_new_arrival():
    t, cfg, sessions = _three_for_two(600)
    r = run(t, sessions[1:], now_s=1000, cfg=cfg)
    assert _charging(r) == ["CP1", "CP2"]
    # CP0 plugs in later but its recorded start is the earliest: it still waits its turn.
    r = run(t, sessions, now_s=1100, state=r.state, cfg=cfg)
    assert _charging(r) == ["CP1", "CP2"]
    r = run(t, sessions, now_s=1700, state=r.state, cfg=cfg)
    assert "CP0" in _charging(r)


def test_a_new_session_id_on_a_connector_starts_afresh():
    t, cfg, sessions = _three_for_two(600)
    r = run(t, sessions, now_s=1000, cfg=cfg)
    assert _charging(r) == ["CP0", "CP1"]
    replaced = [sessions[0], session("CP1", started_s=1050, session_id="other"), sessions[2]]
    r = run(t, replaced, now_s=1060, state=r.state, cfg=cfg)
    assert r.state.sessions[("CP1", 1)].session_id == "other"
    # The new session on CP1 is the latest arrival and has no charging history: it waits.
    assert _charging(r) == ["CP0", "CP2"]
    memo = r.state.sessions[("CP1", 1)]
    assert memo.run_since_s is None and memo.paused_since_s == 1060


def test_rotation_stays_within_one_priority():
    t = CircuitTree()
    t.add_circuit("grid", None, 180)
    for name, hi in (("CP0", 70), ("CP1", 160), ("CP2", 160)):
        t.add_connector((name, 1), "grid", 3, (0, 1, 2), 60, hi)
    cfg = AllocConfig(rotate_after_s=600, raise_holdoff_s=0)
    sessions = [session("CP0", started_s=1, prioritised=True), session("CP1", started_s=2),
                session("CP2", started_s=3)]
    seen = []
    state = None
    for now in (1000, 1700, 2400, 3100):
        r = run(t, sessions, now_s=now, state=state, cfg=cfg)
        state = r.state
        seen.append(_charging(r))
    # The prioritised one never waits; the two others take turns in the 110 dA left.
    assert seen == [["CP0", "CP1"], ["CP0", "CP2"], ["CP0", "CP1"], ["CP0", "CP2"]]


def test_ended_sessions_are_forgotten():
    t, cfg, sessions = _three_for_two(600)
    r = run(t, sessions, now_s=1000, cfg=cfg)
    r = run(t, sessions[:1], now_s=1010, state=r.state, cfg=cfg)
    assert list(r.state.sessions) == [("CP0", 1)]
    assert r.limits[("CP1", 1)] == (0, 3) and r.limits[("CP2", 1)] == (0, 3)
