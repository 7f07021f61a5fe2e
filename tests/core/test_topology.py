from edge.core.errors import ValidationError
from edge.core.topology import Site
from test_domain_data import site_dict, build_site


def _refused(d, field):
    """Building must fail with a ValidationError naming exactly `field`."""
    try:
        Site.from_dict(d)
    except ValidationError as e:
        assert e.field == field, (e.field, field, str(e))
        assert str(e).startswith(field + ": "), str(e)
        return e
    raise AssertionError("accepted a site that should be refused at " + field)


def test_builds_objects_with_integer_units():
    s = build_site()
    assert s.site_id == "demo"
    assert s.grid_max_da == 630
    assert s.margin_da == 10
    assert s.grid_max_power_w is None
    assert s.offline_policy == "deny"
    assert [g.id for g in s.charging_groups] == ["garage", "visitors"]
    c = s.connector("CP001", 1)
    assert (c.station_id, c.id, c.phases, c.wiring, c.min_da, c.max_da) == ("CP001", 1, 3, (0, 1, 2), 60, 160)
    assert c.can_switch_phases is False
    c2 = s.connector("CP001", 2)
    assert c2.phases == 1 and c2.wiring == (1,)
    c3 = s.connector("CP002", 1)
    assert c3.wiring == (1, 2, 0) and c3.can_switch_phases is True


def test_lookups():
    s = build_site()
    assert s.station("nope") is None
    assert s.connector("CP001", 9) is None
    assert s.connector("nope", 1) is None
    assert s.station("CP101").group_id == "visitors"
    assert s.group_of("CP002").id == "garage"
    assert s.group_of("nope") is None
    for junk in (None, 5, ["CP001"], {"id": "CP001"}):
        assert s.station(junk) is None and s.connector(junk, 1) is None and s.group_of(junk) is None
        assert s.charging_group(junk) is None
    assert s.connector("CP001", [1]) is None and s.connector("CP001", "1") is None
    assert s.connector("CP001", True) is None and s.connector("CP001", 1.0) is None
    keys = [(c.station_id, c.id) for c in s.connectors()]
    assert keys == [("CP001", 1), ("CP001", 2), ("CP002", 1), ("CP101", 1)]
    # connectors() hands out a copy: callers cannot corrupt the site
    s.connectors().clear()
    assert len(s.connectors()) == 4


def test_missing_limits_mean_no_extra_limit():
    s = build_site()
    assert s.station("CP002").max_da == 320          # sum of its connectors
    assert s.charging_group("visitors").max_da == 630  # the grid limit
    assert s.connector("CP002", 1).min_da == 60       # IEC 61851 minimum by default


def test_decimal_amps_round_half_up():
    d = site_dict()
    d["grid"]["max_current_a"] = 63.05
    d["charging_groups"][0]["stations"][0]["connectors"][0]["max_current_a"] = 15.94
    s = build_site(d)
    assert s.grid_max_da == 631
    assert s.connector("CP001", 1).max_da == 159


def test_round_trip_to_dict():
    s = build_site()
    again = Site.from_dict(s.to_dict())
    assert again.to_dict() == s.to_dict()
    assert again.tz.text == "CET-1CEST,M3.5.0,M10.5.0/3"


def test_duplicate_station_id_refused_across_groups():
    d = site_dict()
    d["charging_groups"][1]["stations"][0]["id"] = "CP001"
    e = _refused(d, "charging_groups[1].stations[0].id")
    assert "duplicate" in str(e) and "'CP001'" in str(e)


def test_duplicate_group_and_connector_ids_refused():
    d = site_dict()
    d["charging_groups"][1]["id"] = "garage"
    _refused(d, "charging_groups[1].id")
    d = site_dict()
    d["charging_groups"][0]["stations"][0]["connectors"][1]["id"] = 1
    _refused(d, "charging_groups[0].stations[0].connectors[1].id")


def test_bad_values_name_field_and_value():
    cases = [
        (("grid", "max_current_a"), -5, "grid.max_current_a"),
        (("grid", "max_current_a"), "63", "grid.max_current_a"),
        (("grid", "max_current_a"), True, "grid.max_current_a"),
        (("grid", "safety_margin_a"), 63, "grid.safety_margin_a"),
        (("grid", "max_power_w"), 0, "grid.max_power_w"),
        (("timezone",), "Europe/Berlin", "timezone"),
        (("offline_unknown_tokens",), "maybe", "offline_unknown_tokens"),
        (("site_id",), "", "site_id"),
        (("site_id",), "demo/1", "site_id"),
        (("site_id",), "demo+", "site_id"),
        (("site_id",), "d\u00e9mo", "site_id"),
    ]
    for path, value, field in cases:
        d = site_dict()
        target = d
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
        e = _refused(d, field)
        assert repr(value) in str(e), str(e)


def test_connector_rules():
    base = "charging_groups[0].stations[0].connectors[0]"
    changes = [
        ({"phases": 2}, base + ".phases"),
        ({"phases": 3.0}, base + ".phases"),
        ({"phases": True}, base + ".phases"),
        ({"wiring": []}, base + ".wiring"),
        ({"wiring": {"L1": 1}}, base + ".wiring"),
        ({"wiring": "L1L3L2"}, base + ".wiring"),      # not a rotation: reversed field
        ({"min_current_a": 20}, base + ".min_current_a"),
        ({"max_current_a": 0}, base + ".max_current_a"),
        ({"id": 0}, base + ".id"),
        ({"id": "1"}, base + ".id"),
        ({"can_switch_phases": "yes"}, base + ".can_switch_phases"),
        ({"colour": "red"}, base + ".colour"),
    ]
    for change, field in changes:
        d = site_dict()
        d["charging_groups"][0]["stations"][0]["connectors"][0].update(change)
        _refused(d, field)
    one = "charging_groups[0].stations[0].connectors[1]"
    d = site_dict()
    del d["charging_groups"][0]["stations"][0]["connectors"][1]["wiring"]
    _refused(d, one + ".wiring")
    d = site_dict()
    d["charging_groups"][0]["stations"][0]["connectors"][1]["can_switch_phases"] = True
    _refused(d, one + ".can_switch_phases")


def test_station_rules():
    sf = "charging_groups[0].stations[0]"
    for sid in ("", "CP 1", "a/b", "a:b", "x" * 49, 5):
        d = site_dict()
        d["charging_groups"][0]["stations"][0]["id"] = sid
        _refused(d, sf + ".id")
    d = site_dict()
    d["charging_groups"][0]["stations"][0]["connectors"] = []
    _refused(d, sf + ".connectors")


def test_wrong_shapes_refused():
    _refused([], "site")
    d = site_dict()
    d["charging_groups"] = {"id": "x"}
    _refused(d, "charging_groups")
    d = site_dict()
    d["charging_groups"][0] = "garage"
    _refused(d, "charging_groups[0]")
    d = site_dict()
    d["grid"] = None
    _refused(d, "grid")


def test_refused_input_is_left_untouched():
    d = site_dict()
    d["charging_groups"][1]["stations"][0]["connectors"][0]["max_current_a"] = -1
    before = repr(d)
    _refused(d, "charging_groups[1].stations[0].connectors[0].max_current_a")
    assert repr(d) == before


def test_limits_below_every_connector_minimum_are_refused():
    d = site_dict()
    d["charging_groups"][0]["stations"][0]["max_current_a"] = 5.9     # connectors need 6 A
    e = _refused(d, "charging_groups[0].stations[0].max_current_a")
    assert "nothing could charge" in str(e)
    d = site_dict()
    d["charging_groups"][1]["max_current_a"] = 1.6
    _refused(d, "charging_groups[1].max_current_a")
    d = site_dict()
    d["charging_groups"][0]["stations"][0]["max_current_a"] = 6        # exactly one car at minimum: fine
    assert build_site(d).station("CP001").max_da == 60
