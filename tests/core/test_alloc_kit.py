# Shared helpers of the allocation tests (no tests here). Plain Python, so the
# tests that use it run under MicroPython as well.
from edge.core.allocation import allocate
from edge.core.circuits import CircuitTree, circuits_from_site
from edge.core.topology import Site


class Meter:
    def __init__(self, current_da, at_s):
        self.current_da = current_da
        self.at_s = at_s


def site_dict(groups, grid_a=63, margin_a=0, power_w=None):
    return {"site_id": "demo", "timezone": "CET-1CEST,M3.5.0,M10.5.0/3",
            "grid": {"max_current_a": grid_a, "max_power_w": power_w, "safety_margin_a": margin_a},
            "charging_groups": groups}


def connector(cid, phases=3, wiring=None, min_a=6, max_a=16, switch=False):
    d = {"id": cid, "phases": phases, "min_current_a": min_a, "max_current_a": max_a,
         "can_switch_phases": switch}
    if wiring is not None:
        d["wiring"] = wiring
    return d


def tree_of(groups, **kw):
    return circuits_from_site(Site.from_dict(site_dict(groups, **kw)))


def flat_tree(n, grid_da, phases=3, min_da=60, max_da=160, margin_da=0, station_da=None):
    """A root with n connectors, one station circuit each (limit station_da)."""
    t = CircuitTree()
    t.add_circuit("grid", None, grid_da, None, margin_da)
    for x in range(n):
        sid = "CP%d" % x
        t.add_circuit(sid, "grid", station_da)
        t.add_connector((sid, 1), sid, phases, (0, 1, 2)[:phases], min_da, max_da)
    return t


def session(station, connector_id=1, started_s=0, prioritised=False, drawn_da=None,
            controllable=True, session_id=None, priority=None):
    s = {"key": (station, connector_id), "session_id": session_id or "s-%s-%d" % (station, connector_id),
         "started_s": started_s, "prioritised": prioritised, "drawn_da": drawn_da,
         "controllable": controllable}
    if priority is not None:
        s["priority"] = priority
    return s


def run(tree, sessions, grid_da=(0, 0, 0), now_s=1000, state=None, cfg=None, site_limit=None, meter_at_s=None):
    at = now_s if meter_at_s is None else meter_at_s
    return allocate(tree, sessions, Meter(list(grid_da), at), now_s, state, cfg, site_limit)


def limit_of(result, station, connector_id=1):
    return result.targets[(station, connector_id)][0]


def sent_of(result, station, connector_id=1):
    return result.limits[(station, connector_id)][0]


def phase_load(result, tree, keys=None):
    """Current per site phase from the targets of the given (or all) connectors."""
    load = [0, 0, 0]
    for c in tree.connectors:
        if keys is not None and c.key not in keys:
            continue
        t = result.targets.get(c.key)
        if t is None:
            continue
        limit, phases = t
        for p in (c.wiring[:1] if phases == 1 else c.wiring):
            load[p] += limit
    return load
