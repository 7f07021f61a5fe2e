from edge.core.errors import ValidationError
from edge.core.groups import validate_group
from test_domain_data import build_site, snapshot_dict

SITE = build_site()


def _group(i):
    return snapshot_dict()["groups"][i]


def _refused(g, field, strict=False):
    try:
        validate_group(g, "groups[0]", SITE, strict)
    except ValidationError as e:
        assert e.field == field, (e.field, field, str(e))
        assert str(e).startswith(field + ": ")
        return e
    raise AssertionError("accepted a group that should be refused at " + field)


def test_valid_groups_of_each_kind_round_trip():
    for i in range(4):
        g = validate_group(_group(i), "groups[%d]" % i, SITE)
        d = g.to_dict()
        again = validate_group(d, "x", SITE)
        assert again.to_dict() == d
    staff = validate_group(_group(0), "g", SITE)
    assert staff.kind == "drivers" and staff.prioritised and staff.billing == "automatic"
    assert staff.tariff["parking"]["cap_m"] == 5000


def test_where_active():
    staff = validate_group(_group(0), "g", SITE)     # charging group garage + CP101/1
    assert staff.active_at(SITE, "CP001", 1)
    assert staff.active_at(SITE, "CP002", 1)
    assert staff.active_at(SITE, "CP101", 1)
    assert staff.active_at(SITE, "CP101", None)
    assert not staff.active_at(SITE, "nope", 1)
    guests = validate_group(_group(1), "g", SITE)    # station CP101 only
    assert guests.active_at(SITE, "CP101", 1)
    assert not guests.active_at(SITE, "CP001", 1)
    assert not guests.active_at(SITE, "CP001", None)
    adhoc = validate_group(_group(2), "g", SITE)     # visitors + connector CP002/1
    assert adhoc.active_at(SITE, "CP002", 1) and adhoc.active_at(SITE, "CP002", None)
    assert not adhoc.active_at(SITE, "CP001", None)
    site_wide = _group(1)
    site_wide["active_on"] = {"site": True}
    g = validate_group(site_wide, "g", SITE)
    assert all(g.active_at(SITE, c.station_id, c.id) for c in SITE.connectors())


def test_kind_rules():
    g = _group(1)
    g["kind"] = "wallet"
    _refused(g, "groups[0].kind")
    g = _group(1)
    g["billing"] = "automatic"                       # cards are never billed
    _refused(g, "groups[0].billing")
    g = _group(0)
    g["tariff"] = None                               # automatic billing needs a tariff
    _refused(g, "groups[0].tariff")
    g = _group(0)
    g["billing"] = "record_only"
    g["tariff"] = None                               # record-only drivers may go without
    assert validate_group(g, "groups[0]", SITE).tariff is None
    g = _group(0)
    del g["billing"]                                 # drivers must choose
    _refused(g, "groups[0].billing")
    g = _group(2)
    g["tariff"]["parking"] = {"m_per_period": 1, "period_s": 600}
    _refused(g, "groups[0].tariff.parking")
    g = _group(3)
    g["tariff"]["monthly_base_m"] = 100
    _refused(g, "groups[0].tariff.monthly_base_m")
    g = _group(3)
    g["tariff"] = None
    _refused(g, "groups[0].tariff")
    g = _group(1)
    g["windows"] = [{"days": [0], "start": "07:00", "end": "08:00"}]
    _refused(g, "groups[0].windows")
    g = _group(3)
    g["windows"][1]["end"] = "08:00"                 # before start 09:00
    _refused(g, "groups[0].windows[1].end")


def test_active_on_refers_to_the_site():
    cases = [
        ({"stations": ["CP999"]}, "groups[0].active_on.stations[0]"),
        ({"charging_groups": ["roof"]}, "groups[0].active_on.charging_groups[0]"),
        ({"connectors": [["CP001", 3]]}, "groups[0].active_on.connectors[0][1]"),
        ({"connectors": [["CP999", 1]]}, "groups[0].active_on.connectors[0][0]"),
        ({"connectors": [["CP001"]]}, "groups[0].active_on.connectors[0]"),
        ({"stations": ["CP001", "CP001"]}, "groups[0].active_on.stations[1]"),
        ({"site": "yes"}, "groups[0].active_on.site"),
        ({"zones": []}, "groups[0].active_on.zones"),
    ]
    for active_on, field in cases:
        g = _group(1)
        g["active_on"] = active_on
        _refused(g, field)


def test_other_fields():
    for key, value in (("id", ""), ("id", "a b"), ("name", ""), ("name", 7), ("prioritised", 1),
                       ("state", "deleted")):
        g = _group(1)
        g[key] = value
        _refused(g, "groups[0]." + key)
    g = _group(1)
    g["colour"] = "red"
    # From the cloud a field this version does not know is kept; a local operation
    # (an installer's typo) is refused.
    assert validate_group(g, "groups[0]", SITE).extra == {"colour": "red"}
    _refused(g, "groups[0].colour", strict=True)
    _refused("g-staff", "groups[0]")


def test_check_online_is_an_optional_flag_of_groups_with_tokens():
    plain = validate_group(_group(3), "g", SITE)
    assert plain.check_online is False and "check_online" not in plain.to_dict()
    g = _group(3)
    g["check_online"] = True
    roam = validate_group(g, "g", SITE, strict=True)      # a known field, also for local edits
    assert roam.check_online and roam.to_dict()["check_online"] is True
    assert validate_group(roam.to_dict(), "x", SITE).check_online
    assert roam.replace(name="Renamed").check_online
    g["check_online"] = "yes"
    _refused(g, "groups[0].check_online")
    adhoc = _group(2)
    adhoc["check_online"] = True
    _refused(adhoc, "groups[0].check_online")
