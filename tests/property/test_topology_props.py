"""Any valid topology round-trips exactly; any single corruption is refused naming its own path."""
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings, strategies as st

from edge.core.errors import ValidationError
from edge.core.topology import Site

AMPS = st.one_of(st.integers(6, 63), st.decimals(min_value=6, max_value=63, places=2).map(float))


@st.composite
def site_dicts(draw):
    groups = []
    sid = 0
    for g in range(draw(st.integers(0, 3))):
        stations = []
        for _ in range(draw(st.integers(0, 3))):
            sid += 1
            conns = []
            for c in range(draw(st.integers(1, 3))):
                phases = draw(st.sampled_from([1, 3]))
                conn = {"id": c + 1, "phases": phases, "max_current_a": draw(AMPS), "min_current_a": 6,
                        "wiring": draw(st.sampled_from(["L1", "L2", "L3"] if phases == 1 else
                                                        ["L1L2L3", "L2L3L1", "L3L1L2"])),
                        "can_switch_phases": phases == 3 and draw(st.booleans())}
                conns.append(conn)
            st_max = draw(st.one_of(st.none(), st.integers(6, 100)))
            stations.append({"id": "CP%03d" % sid, "max_current_a": st_max, "connectors": conns})
        groups.append({"id": "cg%d" % g, "name": "Group %d" % g,
                       "max_current_a": draw(st.one_of(st.none(), st.integers(6, 200))), "stations": stations})
    return {"site_id": "s-1", "timezone": "CET-1CEST,M3.5.0,M10.5.0/3",
            "grid": {"max_current_a": draw(AMPS), "max_power_w": draw(st.one_of(st.none(), st.integers(1, 10 ** 6))),
                     "safety_margin_a": draw(st.integers(0, 5))},
            "offline_unknown_tokens": draw(st.sampled_from(["deny", "accept"])), "charging_groups": groups}


def _da(amps):
    return int((Decimal(repr(amps)) * 10).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@settings(max_examples=200, deadline=None)
@given(site_dicts())
def test_valid_sites_round_trip_in_integer_deciamps(d):
    site = Site.from_dict(d)
    assert site.grid_max_da == _da(d["grid"]["max_current_a"])
    for g in d["charging_groups"]:
        for s in g["stations"]:
            for c in s["connectors"]:
                conn = site.connector(s["id"], c["id"])
                assert conn.max_da == _da(c["max_current_a"]) and type(conn.max_da) is int
                assert conn.phases == len(conn.wiring) and sorted(conn.wiring) == sorted(set(conn.wiring))
            assert site.group_of(s["id"]).id == g["id"]
    again = Site.from_dict(site.to_dict())
    assert again.to_dict() == site.to_dict()


BAD_VALUES = [None, -1, "x", True, [], {}, 10 ** 9, "", 2.5]


@st.composite
def corrupted(draw):
    d = draw(site_dicts().filter(lambda x: any(g["stations"] for g in x["charging_groups"])))
    groups = [g for g in d["charging_groups"] if g["stations"]]
    g = draw(st.sampled_from(groups))
    gi = d["charging_groups"].index(g)
    s = draw(st.sampled_from(g["stations"]))
    si = g["stations"].index(s)
    c = draw(st.sampled_from(s["connectors"]))
    ci = s["connectors"].index(c)
    key = draw(st.sampled_from(["id", "phases", "wiring", "max_current_a", "min_current_a", "can_switch_phases"]))
    value = draw(st.sampled_from(BAD_VALUES))
    c[key] = value
    return d, "charging_groups[%d].stations[%d].connectors[%d]" % (gi, si, ci), key, value, c


@settings(max_examples=300, deadline=None)
@given(corrupted())
def test_a_corrupted_connector_is_refused_at_its_own_path(case):
    d, path, key, value, conn = case
    # Only two of these values are legal where they land: a 2.5 A minimum, and
    # phase switching on a 3-phase connector.
    legal = (key == "min_current_a" and value == 2.5) or \
        (key == "can_switch_phases" and value is True and conn["phases"] == 3)
    try:
        Site.from_dict(d)
    except ValidationError as e:
        assert not legal, (key, value, str(e))
        assert e.field.startswith(path + "."), (e.field, path, key)
        assert str(e).startswith(e.field + ": ")
    else:
        assert legal, (key, value)


JUNK = [None, True, -1, 0, 2 ** 70, 1.5, float("nan"), float("inf"), "", "x" * 300, [], {}, [[]], {"a": []}, "L1"]


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@st.composite
def anywhere_corrupted(draw):
    import copy
    d = copy.deepcopy(draw(site_dicts()))
    path = draw(st.sampled_from(list(_paths(d))))
    junk = draw(st.sampled_from(JUNK))
    if not path:
        return junk
    parent = d
    for p in path[:-1]:
        parent = parent[p]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = junk
    return d


@settings(max_examples=400, deadline=None)
@given(anywhere_corrupted())
def test_any_corruption_is_a_validation_error_or_a_valid_site(d):
    try:
        site = Site.from_dict(d)
    except ValidationError as e:
        assert str(e).startswith(e.field + ": ")
        return
    assert Site.from_dict(site.to_dict()).to_dict() == site.to_dict()
