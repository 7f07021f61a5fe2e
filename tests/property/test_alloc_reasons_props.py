"""A reason names a limit only where that limit really holds the connector.

For any site (the generator of test_alloc_props): a connector said to be
limited by a circuit phase sees that circuit phase full (not one deciamp more
fits), and one said to be paused on a circuit phase sees less than its minimum
left there. Loads are recomputed from the circuit tree and the targets, not
from what the allocation kept.
"""
from hypothesis import HealthCheck, given, settings

from edge.core.alloc_reasons import CODES
from edge.core.allocation import allocate
from test_alloc_props import Meter, capacities, loaded_phases, non_ev_load, sites, usage

_NAMES = {"L1": 0, "L2": 1, "L3": 2}


def _room(tree, cap, use, key, circuit, phase, phases):
    """(what is left on the named limit, how often the connector passes it)."""
    spec = next(c for c in tree.connectors if c.key == key)
    loaded = loaded_phases(spec, phases)
    if phase == "power":
        name, mult = (circuit, "sum"), len(loaded)
    elif phase == "all":
        name, mult = (circuit, loaded[0]), 1
    else:
        name, mult = (circuit, _NAMES[phase]), 1
        assert name[1] in loaded, "a phase the connector does not load is named"
    assert name in cap, "a circuit phase without a limit is named: %r" % (name,)
    return cap[name] - use.get(name, 0), mult, spec


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_a_named_limit_is_really_full(case):
    tree, sessions, grid, ext = case
    site_limit = {"max_da": ext, "expires_s": 10_000} if ext is not None else None
    r = allocate(tree, sessions, Meter(grid, 100), 100, site_limit=site_limit)
    cap = capacities(tree, non_ev_load(grid, sessions), ext)
    use = usage(tree, r.targets)
    reasons = r.reasons()
    assert set(reasons) == {c.key for c in tree.connectors}
    with_session = {s["key"] for s in sessions}
    for key, why in reasons.items():
        assert why["code"] in CODES
        if key not in with_session:
            assert why["code"] == "idle"
            continue
        limit, phases = r.targets[key]
        if why["code"] in ("at_max", "at_demand", "uncontrollable"):
            assert why["circuit"] is None
            continue
        assert why["circuit"] is not None, (key, why)
        if why["paused"]:
            assert limit == 0
            # Paused: the minimum (in the mode it was last tried) does not fit there.
            left, mult, spec = _room(tree, cap, use, key, why["circuit"], why["phase"], phases)
            assert left < max(spec.min_da, 1) * mult, (key, why, left)
        else:
            left, mult, spec = _room(tree, cap, use, key, why["circuit"], why["phase"], phases)
            assert limit > 0 or spec.min_da == 0
            assert left < mult, (key, why, left)
