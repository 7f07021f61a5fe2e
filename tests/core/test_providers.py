"""EMP access per charging group: an eRoaming group may name the providers whose
customers it admits, and where (docs/domain.md, section 4)."""
from edge.core import authorize as A
from edge.core.authorize import authorize, authorize_answer
from edge.core.book import GroupBook
from edge.core.errors import ValidationError
from edge.core.groups import provider_key
from test_domain_data import MON_2025_06_02_0800_LOCAL, build_site, snapshot_dict

SITE = build_site()
NOW = MON_2025_06_02_0800_LOCAL
EVERYWHERE = {"site": True, "charging_groups": [], "stations": [], "connectors": []}


def _snapshot(providers):
    s = snapshot_dict()
    roam = s["groups"][3]
    roam["active_on"] = EVERYWHERE
    roam["providers"] = providers
    s["tokens"].append({"uid": "FR-XYZ-9", "groups": ["g-roam"], "status": "valid", "expires_s": None,
                        "driver": None, "provider": "FR*XYZ"})
    s["tokens"].append({"uid": "NL-OTH-1", "groups": ["g-roam"], "status": "valid", "expires_s": None,
                        "driver": None, "provider": "NL-OTH"})
    return s


PROVIDERS = [{"id": "DE*ABC", "active_on": None},
             {"id": "FR-XYZ", "active_on": {"site": False, "charging_groups": [], "stations": [],
                                            "connectors": [["CP001", 2]]}}]


def _book(providers=PROVIDERS):
    return GroupBook.from_snapshot(_snapshot(providers), SITE, "sync", 1000)


def test_provider_ids_compare_without_case_and_separators():
    assert provider_key("DE*ABC") == provider_key("de-abc") == provider_key("DEABC")
    assert provider_key("DE*ABC") != provider_key("DE*ABD")


def test_listed_provider_is_admitted_where_allowed_and_others_are_refused_with_their_reason():
    b = _book()
    assert authorize(b, SITE, "DE-ABC-C123", "CP101", 1, NOW).accepted
    assert authorize(b, SITE, "DE-ABC-C123", "CP001", 1, NOW).accepted
    only_there = authorize(b, SITE, "FR-XYZ-9", "CP001", 2, NOW)
    assert only_there.accepted and only_there.group_id == "g-roam"
    elsewhere = authorize(b, SITE, "FR-XYZ-9", "CP001", 1, NOW)
    assert not elsewhere.accepted and elsewhere.reason == A.PROVIDER_NOT_ALLOWED
    assert "provider_not_allowed" in elsewhere.message
    other = authorize(b, SITE, "NL-OTH-1", "CP101", 1, NOW)
    assert not other.accepted and other.reason == A.PROVIDER_NOT_ALLOWED
    # OCPP 1.6 Authorize names no connector: CP001 has one connector where FR*XYZ may charge
    assert authorize(b, SITE, "FR-XYZ-9", "CP001", None, NOW).accepted
    assert authorize(b, SITE, "FR-XYZ-9", "CP002", None, NOW).reason == A.PROVIDER_NOT_ALLOWED


def test_without_a_providers_list_every_provider_is_admitted():
    b = _book(None)
    assert authorize(b, SITE, "NL-OTH-1", "CP101", 1, NOW).accepted
    assert "providers" not in b.group("g-roam").to_dict()
    empty = _book([])
    assert authorize(empty, SITE, "DE-ABC-C123", "CP101", 1, NOW).reason == A.PROVIDER_NOT_ALLOWED


def test_providers_round_trip_and_changes_are_in_the_history():
    b = _book()
    snap = b.to_snapshot()
    assert snap["groups"][2]["providers"][0] == {"id": "DE*ABC", "active_on": None}
    again = GroupBook.from_snapshot(snap, SITE)
    assert again.to_snapshot() == snap
    delta = {"base_version": 12, "version": 13,
             "groups_upsert": [dict(snap["groups"][2], providers=[{"id": "DE*ABC", "active_on": None}])]}
    after = b.apply_delta(delta, SITE, "cloud:c-1", 2000)
    changes = [h for h in after.history if h["change"] == "providers"]
    assert len(changes) == 1 and changes[0]["before"] == snap["groups"][2]["providers"]
    assert authorize(after, SITE, "FR-XYZ-9", "CP001", 2, NOW).reason == A.PROVIDER_NOT_ALLOWED


def _refused(providers, field, kind_index=3):
    s = _snapshot(providers)
    if kind_index != 3:
        s["groups"][kind_index]["providers"] = providers
        s["groups"][3]["providers"] = None
    try:
        GroupBook.from_snapshot(s, SITE)
    except ValidationError as e:
        assert e.field == field, (e.field, field)
        return
    raise AssertionError("accepted, expected a refusal at " + field)


def test_provider_lists_are_validated():
    _refused("DE*ABC", "groups[3].providers")
    _refused([{"id": ""}], "groups[3].providers[0].id")
    _refused([{"id": "DE ABC"}], "groups[3].providers[0].id")
    _refused([{"id": "**"}], "groups[3].providers[0].id")
    _refused([{"id": "DE*ABC"}, {"id": "de-abc"}], "groups[3].providers[1].id")
    _refused([{"id": "DE*ABC", "active_on": {"stations": ["CP999"]}}],
             "groups[3].providers[0].active_on.stations[0]")
    # a value object: an unknown field there is refused, not kept
    _refused([{"id": "DE*ABC", "share": 5}], "groups[3].providers[0].share")
    _refused([{"id": "DE*ABC"}], "groups[1].providers", kind_index=1)


def _answer(**over):
    a = {"accepted": True, "reason": "accepted", "group_id": "g-roam", "provider": "DE*ABC",
         "expires_s": NOW + 600, "tariff": None}
    a.update(over)
    return a


def test_online_answers_are_decided_by_the_same_group_rules():
    b = _book()
    d = authorize_answer(b, SITE, _answer(), "UNKNOWN1", "CP101", 1, NOW)
    assert d.accepted and d.group_id == "g-roam" and d.expires_s == NOW + 600
    assert d.tariff == b.group("g-roam").tariff
    priced = authorize_answer(b, SITE, _answer(tariff={"currency": "EUR", "energy_m_per_kwh": 410,
                                                       "parking": None, "monthly_base_m": 0}),
                              "UNKNOWN1", "CP101", 1, NOW)
    assert priced.accepted and priced.tariff["energy_m_per_kwh"] == 410
    late = authorize_answer(b, SITE, _answer(), "UNKNOWN1", "CP101", 1, NOW + 600)
    assert late.reason == A.TOKEN_EXPIRED
    wrong_place = authorize_answer(b, SITE, _answer(provider="FR*XYZ"), "UNKNOWN1", "CP101", 1, NOW)
    assert wrong_place.reason == A.PROVIDER_NOT_ALLOWED
    closed = authorize_answer(b, SITE, _answer(expires_s=NOW + 86400), "UNKNOWN1", "CP101", 1,
                              NOW + 12 * 3600)
    assert closed.reason == A.OUTSIDE_HOURS
    no_group = authorize_answer(b, SITE, _answer(group_id="g-gone"), "UNKNOWN1", "CP101", 1, NOW)
    assert not no_group.accepted and no_group.reason == A.UNKNOWN_TOKEN
    refused = authorize_answer(b, SITE, _answer(accepted=False, reason="token_blocked"),
                               "UNKNOWN1", "CP101", 1, NOW)
    assert refused.reason == A.TOKEN_BLOCKED
    odd = authorize_answer(b, SITE, _answer(accepted=False, reason="no_credit_left"),
                           "UNKNOWN1", "CP101", 1, NOW)
    assert not odd.accepted and odd.reason in (A.UNKNOWN_TOKEN, A.REMOTE_START_ONLY)
    assert authorize_answer(b, SITE, _answer(), "UNKNOWN1", "CP999", 1, NOW).reason == A.UNKNOWN_STATION
