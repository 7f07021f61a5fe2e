from edge.core import authorize as A
from edge.core.authorize import authorize, authorize_remote_start, local_list_entries
from edge.core.topology import Site
from test_domain_data import (
    MON_2025_06_02_0800_LOCAL, MON_2025_06_02_2000_LOCAL, SUN_2025_06_01_1000_LOCAL,
    build_book, build_site, site_dict, snapshot_dict,
)

SITE = build_site()
NOW = MON_2025_06_02_0800_LOCAL


def _tok(uid, groups, **extra):
    t = {"uid": uid, "groups": groups, "status": "valid", "expires_s": None, "driver": None, "provider": None}
    t.update(extra)
    return t


def test_accepted_decision_carries_group_priority_and_tariff_copy():
    b = build_book()
    d = authorize(b, SITE, "04a1b2c3d4", "CP001", 1, NOW)
    assert d.accepted and d.reason == A.ACCEPTED
    assert d.group_id == "g-staff" and d.prioritised and d.charging_priority == 9
    assert d.billing == "automatic" and d.expires_s is None
    assert d.tariff == b.group("g-staff").tariff
    d.tariff["parking"]["cap_m"] = 1          # the session's copy is private
    assert b.group("g-staff").tariff["parking"]["cap_m"] == 5000
    cards = authorize(b, SITE, "CARD0001", "CP101", 1, NOW)
    assert cards.accepted and cards.group_id == "g-guests"
    assert not cards.prioritised and cards.charging_priority == 0 and cards.tariff is None
    assert cards.billing == "record_only"


def test_each_denial_reason():
    b = build_book()
    cases = [
        ("04A1B2C3D4", "CP404", 1, A.UNKNOWN_STATION),
        ("04A1B2C3D4", "CP001", 9, A.UNKNOWN_CONNECTOR),
        ("04A1B2C3D4", "CP001", "1", A.UNKNOWN_CONNECTOR),
        ("NOBODY", "CP001", 1, A.UNKNOWN_TOKEN),
        ("NOBODY", "CP101", 1, A.REMOTE_START_ONLY),       # ad hoc charging is active there
        ("BLOCKED01", "CP101", 1, A.TOKEN_BLOCKED),
        ("OLD0001", "CP101", 1, A.TOKEN_EXPIRED),
        ("CARD0001", "CP001", 1, A.NOT_ACTIVE_HERE),
        ("DE-ABC-C123", "CP001", 1, A.NOT_ACTIVE_HERE),
    ]
    for uid, station, conn, reason in cases:
        d = authorize(b, SITE, uid, station, conn, NOW)
        assert not d.accepted, (uid, station, conn)
        assert d.reason == reason, (uid, station, conn, d.reason, d.message)
        assert d.tariff is None and d.message
    archived = b.archive_group("g-guests", "installer", 1)
    d = authorize(archived, SITE, "CARD0001", "CP101", 1, NOW)
    assert not d.accepted and d.reason == A.GROUP_ARCHIVED and d.group_id == "g-guests"


def test_expiry_is_exclusive_at_the_instant():
    b = build_book()
    assert authorize(b, SITE, "OLD0001", "CP101", 1, 1699999999).accepted
    assert authorize(b, SITE, "OLD0001", "CP101", 1, 1700000000).reason == A.TOKEN_EXPIRED


def test_eroaming_only_inside_windows():
    b = build_book()
    assert authorize(b, SITE, "DE-ABC-C123", "CP101", 1, MON_2025_06_02_0800_LOCAL).accepted
    d = authorize(b, SITE, "DE-ABC-C123", "CP101", 1, MON_2025_06_02_2000_LOCAL)
    assert not d.accepted and d.reason == A.OUTSIDE_HOURS
    assert authorize(b, SITE, "DE-ABC-C123", "CP101", 1, SUN_2025_06_01_1000_LOCAL).reason == A.OUTSIDE_HOURS


def test_connector_none_means_any_connector_of_the_station():
    snap = snapshot_dict()
    snap["groups"][1]["active_on"] = {"connectors": [["CP001", 2]]}
    b = build_book(snap)
    assert authorize(b, SITE, "CARD0001", "CP001", None, NOW).accepted
    assert authorize(b, SITE, "CARD0001", "CP001", 2, NOW).accepted
    assert authorize(b, SITE, "CARD0001", "CP001", 1, NOW).reason == A.NOT_ACTIVE_HERE
    assert authorize(b, SITE, "CARD0001", "CP002", None, NOW).reason == A.NOT_ACTIVE_HERE


def test_multi_group_rule_prioritised_then_kind_then_id():
    snap = snapshot_dict()
    snap["groups"][1]["active_on"] = {"site": True}
    snap["groups"].append({"id": "g-aaa", "name": "A", "kind": "cards", "active_on": {"site": True}})
    snap["tokens"].append(_tok("MULTI", ["g-guests", "g-aaa", "g-staff"]))
    b = build_book(snap)
    # prioritised staff wins wherever it is active
    assert authorize(b, SITE, "MULTI", "CP001", 1, NOW).group_id == "g-staff"
    assert authorize(b, SITE, "MULTI", "CP101", 1, NOW).group_id == "g-staff"   # staff is active on CP101/1
    b2 = b.set_prioritised("g-staff", False, "t", 1)
    assert authorize(b2, SITE, "MULTI", "CP001", 1, NOW).group_id == "g-staff"  # drivers before cards
    b3 = b2.archive_group("g-staff", "t", 2)
    # two cards groups left, neither prioritised: the id decides (g-aaa < g-guests)
    assert authorize(b3, SITE, "MULTI", "CP001", 1, NOW).group_id == "g-aaa"
    b4 = b3.set_prioritised("g-guests", True, "t", 3)
    assert authorize(b4, SITE, "MULTI", "CP001", 1, NOW).group_id == "g-guests"
    # the order in the token's list does not matter
    snap2 = snapshot_dict()
    snap2["groups"][1]["active_on"] = {"site": True}
    snap2["groups"].append({"id": "g-aaa", "name": "A", "kind": "cards", "active_on": {"site": True}})
    snap2["tokens"].append(_tok("MULTI", ["g-staff", "g-aaa", "g-guests"]))
    b5 = build_book(snap2).set_prioritised("g-staff", False, "t", 1)
    assert authorize(b5, SITE, "MULTI", "CP001", 1, NOW).group_id == "g-staff"


def test_denial_over_several_groups_reports_the_furthest():
    snap = snapshot_dict()
    snap["tokens"].append(_tok("R2", ["g-guests", "g-roam"], provider="DE-ABC"))
    b = build_book(snap).archive_group("g-guests", "t", 1)
    d = authorize(b, SITE, "R2", "CP101", 1, MON_2025_06_02_2000_LOCAL)
    assert not d.accepted and d.reason == A.OUTSIDE_HOURS and d.group_id == "g-roam"
    assert "g-guests: group_archived" in d.message and "g-roam: outside_hours" in d.message


def test_offline_policy_for_unknown_tokens():
    b = build_book()
    assert authorize(b, SITE, "NOBODY", "CP001", 1, NOW, online=False).reason == A.UNKNOWN_TOKEN
    d = site_dict()
    d["offline_unknown_tokens"] = "accept"
    accepting = Site.from_dict(d)
    off = authorize(b, accepting, "NOBODY", "CP001", 1, NOW, online=False)
    assert off.accepted and off.reason == A.OFFLINE_UNKNOWN_ACCEPTED and off.group_id is None
    assert off.tariff is None and not off.prioritised
    # online, the policy plays no role
    assert authorize(b, accepting, "NOBODY", "CP001", 1, NOW, online=True).reason == A.UNKNOWN_TOKEN
    # known but blocked tokens stay blocked offline
    assert authorize(b, accepting, "BLOCKED01", "CP101", 1, NOW, online=False).reason == A.TOKEN_BLOCKED


def test_hostile_token_values_are_just_unknown():
    b = build_book()
    for uid in (None, 5, "", ["04A1B2C3D4"], "x" * 10000, "CARD000\u0661"):
        assert authorize(b, SITE, uid, "CP001", 1, NOW).reason == A.UNKNOWN_TOKEN
    # U+FB00 (the ligature "ff") upper-cases to "FF" on CPython: it must not reach token "ABFF"
    snap = snapshot_dict()
    snap["tokens"].append(_tok("ABFF", ["g-staff"]))
    b2 = build_book(snap)
    assert authorize(b2, SITE, "abff", "CP001", 1, NOW).accepted
    assert authorize(b2, SITE, "AB\ufb00", "CP001", 1, NOW).reason == A.UNKNOWN_TOKEN


def test_remote_start():
    b = build_book()
    d = authorize_remote_start(b, SITE, "pi_3Nx", "CP101", 1, NOW)
    assert d.accepted and d.group_id == "g-adhoc" and d.tariff["energy_m_per_kwh"] == 490
    assert d.billing == "automatic"
    assert authorize_remote_start(b, SITE, "pi_3Nx", "CP101", 1, NOW, group_id="g-adhoc").accepted
    cases = [
        (("pi", "CP001", 1, None), A.NOT_ACTIVE_HERE),
        (("pi", "CP101", 1, "g-staff"), A.NO_ADHOC_GROUP),
        (("pi", "CP101", 1, "g-nope"), A.NO_ADHOC_GROUP),
        (("pi", "CP404", 1, None), A.UNKNOWN_STATION),
        (("pi", "CP101", None, None), A.UNKNOWN_CONNECTOR),
        (("pi", "CP101", 2, None), A.UNKNOWN_CONNECTOR),
        (("", "CP101", 1, None), A.INVALID_REQUEST),
        ((None, "CP101", 1, None), A.INVALID_REQUEST),
    ]
    for (ref, station, conn, gid), reason in cases:
        d = authorize_remote_start(b, SITE, ref, station, conn, NOW, group_id=gid)
        assert not d.accepted and d.reason == reason, (ref, station, conn, gid, d.reason)
    archived = b.archive_group("g-adhoc", "t", 1)
    assert authorize_remote_start(archived, SITE, "pi", "CP101", 1, NOW).reason == A.GROUP_ARCHIVED
    snap = snapshot_dict()
    del snap["groups"][2]
    assert authorize_remote_start(build_book(snap), SITE, "pi", "CP101", 1, NOW).reason == A.NO_ADHOC_GROUP


def test_local_list_entries_order_and_filter():
    snap = snapshot_dict()
    snap["groups"][1]["active_on"] = {"site": True}
    for i in range(5):
        snap["tokens"].append(_tok("G%02d" % i, ["g-guests"]))
    b = build_book(snap)
    far_future = 2000000000
    entries = local_list_entries(b, SITE, "CP001", 100, far_future, recent_uids=["g03", "NOBODY", "BLOCKED01"])
    uids = [e[0] for e in entries]
    # prioritised staff first (by uid), then recent users, then the rest by uid
    assert uids[:2] == ["04A1B2C3D4", "BOTH0001"]
    assert uids[2] == "G03"
    assert uids[3:] == ["CARD0001", "G00", "G01", "G02", "G04"]
    assert "BLOCKED01" not in uids and "OLD0001" not in uids and "DE-ABC-C123" not in uids
    assert entries[0] == ("04A1B2C3D4", "valid", None, "g-staff")
    assert entries[1][3] == "g-staff"          # BOTH0001: the multi-group rule picks staff
    assert entries[2][3] == "g-guests"
    # truncation keeps the most relevant
    assert [e[0] for e in local_list_entries(b, SITE, "CP001", 3, far_future, ["g03"])] == uids[:3]
    assert local_list_entries(b, SITE, "CP404", 10, far_future) == []
    assert local_list_entries(b, SITE, "CP001", 0, far_future) == []
    assert local_list_entries(b, SITE, ["CP001"], 5, far_future) == []
    assert len(local_list_entries(b, SITE, "CP001", 5, far_future, recent_uids=None)) == 5
    # tokens not yet expired are included with their expiry
    assert ("OLD0001", "valid", 1700000000, "g-guests") in local_list_entries(b, SITE, "CP101", 100, 1600000000)


def test_every_reason_is_a_distinct_constant():
    assert len(set(A.REASONS)) == len(A.REASONS)
    for r in A.REASONS:
        assert r == r.lower() and " " not in r


def test_tariff_change_reaches_future_sessions_only():
    b = build_book()
    running = authorize(b, SITE, "04A1B2C3D4", "CP001", 1, NOW)
    b2 = b.set_tariff("g-staff", {"currency": "EUR", "energy_m_per_kwh": 390}, "installer", NOW)
    later = authorize(b2, SITE, "04A1B2C3D4", "CP001", 1, NOW + 60)
    assert running.tariff["energy_m_per_kwh"] == 350 and running.tariff["parking"]["free_s"] == 7200
    assert later.tariff["energy_m_per_kwh"] == 390 and later.tariff["parking"] is None


def test_decision_to_dict_is_plain_data():
    d = authorize(build_book(), SITE, "04A1B2C3D4", "CP001", 1, NOW).to_dict()
    assert d["accepted"] is True and d["reason"] == "accepted" and d["group_id"] == "g-staff"
    assert set(d) == {"accepted", "reason", "group_id", "prioritised", "charging_priority", "tariff",
                      "billing", "expires_s", "message"}


def test_empty_book_knows_nobody():
    from edge.core.book import GroupBook
    b = GroupBook.empty()
    assert b.version == 0 and b.groups() == [] and b.token_count() == 0
    assert authorize(b, SITE, "04A1B2C3D4", "CP001", 1, NOW).reason == A.UNKNOWN_TOKEN
    assert authorize_remote_start(b, SITE, "pi", "CP101", 1, NOW).reason == A.NO_ADHOC_GROUP
    assert local_list_entries(b, SITE, "CP001", 10, NOW) == []


def test_messages_stay_short_for_hostile_ids():
    b = build_book()
    for d in (authorize(b, SITE, "x" * 10000, "CP001", 1, NOW),
              authorize(b, SITE, "x", "S" * 10000, 1, NOW),
              authorize_remote_start(b, SITE, "p" * 10000, "CP101", 1, NOW),
              authorize_remote_start(b, SITE, "p", "CP101", 1, NOW, group_id="g" * 10000)):
        assert not d.accepted and len(d.message) < 200, d.message


def test_a_listed_token_checked_online_is_refused_by_any_cloud_refusal():
    b = build_book()
    assert authorize(b, SITE, "CARD0001", "CP101", 1, NOW).accepted
    for reason, expect in (("token_blocked", A.TOKEN_BLOCKED), ("unknown_token", A.UNKNOWN_TOKEN),
                           ("no-such-code", A.UNKNOWN_TOKEN)):
        answer = {"accepted": False, "reason": reason, "group_id": None, "provider": None,
                  "expires_s": None, "tariff": None}
        d = A.authorize_checked(b, SITE, answer, "CARD0001", "CP101", 1, NOW)
        assert not d.accepted and d.reason == expect, (reason, d.reason)
    ok = {"accepted": True, "reason": "accepted", "group_id": "g-guests", "provider": None,
          "expires_s": NOW + 60, "tariff": None}
    d = A.authorize_checked(b, SITE, ok, "CARD0001", "CP101", 1, NOW)
    assert d.accepted and d.group_id == "g-guests" and d.expires_s == NOW + 60
    assert A.authorize_checked(b, SITE, ok, "CARD0001", "CP404", 1, NOW).reason == A.UNKNOWN_STATION


def test_tokens_of_check_online_groups_stay_out_of_wallbox_lists():
    snap = snapshot_dict()
    snap["groups"][1]["active_on"] = {"site": True}
    before = [e[0] for e in local_list_entries(build_book(snap), SITE, "CP001", 100, NOW)]
    assert "CARD0001" in before
    snap["groups"][1]["check_online"] = True
    after = [e[0] for e in local_list_entries(build_book(snap), SITE, "CP001", 100, NOW)]
    assert "CARD0001" not in after and "04A1B2C3D4" in after
