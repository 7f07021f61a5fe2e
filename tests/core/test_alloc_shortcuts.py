# Shortcuts of the allocation that must not change any result.
from edge.core.alloc_config import AllocConfig
from edge.core.allocation import allocate
from edge.core.circuits import CircuitTree
from test_alloc_kit import Meter, session


def _site(grid_da):
    # Two groups of 3 stations (one 1-phase each); each group limited to 200 per phase.
    t = CircuitTree()
    t.add_circuit("grid", None, grid_da, None, 10)
    for g in range(2):
        t.add_circuit("g%d" % g, "grid", 200)
        for s in range(3):
            sid = "g%d-s%d" % (g, s)
            t.add_circuit(sid, "g%d" % g, 250)
            t.add_connector((sid, 1), sid, 3, (0, 1, 2), 60, 320)
            t.add_connector((sid, 2), sid, 1, ((g + s) % 3,), 60, 320, False)
    return t


def _sessions(t):
    return [session(c.key[0], c.key[1], started_s=n, prioritised=n % 4 == 0)
            for n, c in enumerate(t.connectors)]


def test_root_bound_counts_the_limits_below_it():
    layout = _site(1000).compile()
    # Each group can load a phase with 200 at most: 400 for both, plus one
    # deciamp of rounding slack per connector on that phase.
    wired = [sum(1 for c in layout.specs if p in c.wiring) for p in range(3)]
    assert layout.root_bound == [400 + wired[p] for p in range(3)]
    for i in range(layout.n):
        full = layout.path[i][0]
        assert layout.path_below_root[i][0] == full[len(layout.specs[i].wiring):]    # root first


def test_a_root_that_cannot_bind_is_left_out_with_the_same_result():
    cfg = AllocConfig(phase_up_margin_da=10)
    for grid_da in (300, 400, 425, 435, 450, 1000):
        t = _site(grid_da)
        layout = t.compile()
        caps = [grid_da - 10] * 3 + [0] * (layout.m - 3)
        left_out = layout.paths_for(caps, 10)[0] is layout.path_below_root
        assert left_out == (grid_da - 10 >= max(layout.root_bound) + 10), grid_da
        r = allocate(t, _sessions(t), Meter([0, 0, 0], 100), 100, None, cfg)
        layout.root_bound = [1 << 60] * 3
        full = allocate(t, _sessions(t), Meter([0, 0, 0], 100), 100, None, cfg)
        assert r.targets == full.targets and r.status == full.status, grid_da


def test_the_compiled_layout_is_kept_until_the_tree_changes():
    t = _site(1000)
    layout = t.compile()
    assert t.compile() is layout
    t.add_circuit("extra", "grid", 100)
    assert t.compile() is not layout


def test_the_order_of_the_last_cycle_is_only_a_hint():
    # Rotation and pauses reorder sessions; the result must not depend on the hint.
    t = _site(300)
    sessions = _sessions(t)
    cfg = AllocConfig(rotate_after_s=30, raise_holdoff_s=0)
    hinted = plain = None
    for now in range(100, 400, 20):
        hinted = allocate(t, sessions, Meter([0, 0, 0], now), now, hinted and hinted.state, cfg)
        if plain is not None:
            plain.state.hint = None
        plain = allocate(t, sessions, Meter([0, 0, 0], now), now, plain and plain.state, cfg)
        assert hinted.targets == plain.targets and hinted.limits == plain.limits, now
        assert hinted.status == plain.status, now
    _, order, _, present, _ = hinted.state.hint
    assert len(order) == len(sessions) and sorted(order) == [i for i in range(len(present)) if present[i]]
