from edge.core.book import GroupBook
from edge.core.errors import ValidationError, VersionMismatch
from test_domain_data import build_book, build_site, snapshot_dict

SITE = build_site()


def _refused(fn, field):
    try:
        fn()
    except ValidationError as e:
        assert e.field == field, (e.field, field, str(e))
        assert str(e).startswith(field + ": ")
        return e
    raise AssertionError("accepted, expected a refusal at " + field)


def _delta(**lists):
    d = {"base_version": 12, "version": 13}
    d.update(lists)
    return d


def _tok(uid, groups, **extra):
    t = {"uid": uid, "groups": groups, "status": "valid", "expires_s": None, "driver": None, "provider": None}
    t.update(extra)
    return t


def test_snapshot_builds_and_round_trips():
    b = build_book()
    assert b.version == 12
    assert [g.id for g in b.groups()] == ["g-adhoc", "g-guests", "g-roam", "g-staff"]
    assert b.token_count() == 6
    assert b.token("04a1b2c3d4")["uid"] == "04A1B2C3D4"       # case-insensitive look-up
    assert b.token("nope") is None and b.token(None) is None
    assert b.driver("d-17") == {"id": "d-17", "name": "Jane Doe", "group": "g-staff"}
    again = GroupBook.from_snapshot(b.to_snapshot(), SITE)
    assert again.to_snapshot() == b.to_snapshot()
    snap = snapshot_dict()
    out = b.to_snapshot()
    assert sorted(t["uid"] for t in out["tokens"]) == sorted(t["uid"] for t in snap["tokens"])


def test_snapshot_history_records_creation_and_survives_a_restore():
    b = build_book()
    creates = [(h["group_id"], h["change"], h["by"], h["at_s"]) for h in b.history]
    assert creates == [(g, "create", "sync", 1000) for g in ("g-adhoc", "g-guests", "g-roam", "g-staff")]
    restored = GroupBook.from_snapshot(b.to_snapshot(with_history=True), SITE)
    assert restored.history == b.history


def test_snapshot_with_previous_continues_history():
    b = build_book()
    snap = snapshot_dict()
    snap["version"] = 20
    snap["groups"][1]["name"] = "Visitors"
    b2 = GroupBook.from_snapshot(snap, SITE, by="sync:c-9001", now_s=2000, previous=b)
    assert b2.history[:len(b.history)] == b.history
    new = b2.history[len(b.history):]
    assert new == [{"at_s": 2000, "by": "sync:c-9001", "group_id": "g-guests", "change": "name",
                    "before": "Guests", "after": "Visitors"}]


def test_snapshot_refusals_name_field_and_value():
    cases = []
    s = snapshot_dict(); s["tokens"][3]["status"] = "lost"; cases.append((s, "tokens[3].status"))
    s = snapshot_dict(); s["tokens"][1]["groups"] = ["g-nope"]; cases.append((s, "tokens[1].groups[0]"))
    s = snapshot_dict(); s["tokens"][1]["groups"] = ["g-adhoc"]; cases.append((s, "tokens[1].groups[0]"))
    s = snapshot_dict(); s["tokens"][4]["provider"] = None; cases.append((s, "tokens[4].provider"))
    s = snapshot_dict(); s["tokens"][1]["uid"] = "04a1b2c3d4"; cases.append((s, "tokens[1].uid"))
    s = snapshot_dict(); s["tokens"][1]["uid"] = "X" * 37; cases.append((s, "tokens[1].uid"))
    s = snapshot_dict(); s["tokens"][1]["uid"] = "CARD\u00df"; cases.append((s, "tokens[1].uid"))
    s = snapshot_dict(); s["tokens"][1]["uid"] = " CARD"; cases.append((s, "tokens[1].uid"))
    s = snapshot_dict(); s["tokens"][1]["expires_s"] = "soon"; cases.append((s, "tokens[1].expires_s"))
    s = snapshot_dict(); s["tokens"][1]["driver"] = "d-99"; cases.append((s, "tokens[1].driver"))
    s = snapshot_dict(); s["tokens"][1]["groups"] = []; cases.append((s, "tokens[1].groups"))
    s = snapshot_dict(); s["tokens"][1]["pin"] = "1234"; s["tokens"][1]["status"] = 1
    cases.append((s, "tokens[1].status"))     # an unknown field does not excuse a wrong one
    s = snapshot_dict(); s["groups"][0]["account_id"] = "acc-7"; s["groups"][0]["prioritised"] = "yes"
    cases.append((s, "groups[0].prioritised"))
    s = snapshot_dict(); s["groups"][0]["tariff"]["night_m_per_kwh"] = 1
    cases.append((s, "groups[0].tariff.night_m_per_kwh"))   # value objects stay closed
    s = snapshot_dict(); s["groups"][1]["id"] = "g-staff"; cases.append((s, "groups[1].id"))
    s = snapshot_dict(); s["groups"][0]["tariff"]["energy_m_per_kwh"] = -1
    cases.append((s, "groups[0].tariff.energy_m_per_kwh"))
    s = snapshot_dict(); s["drivers"][0]["group"] = "g-guests"; cases.append((s, "drivers[0].group"))
    s = snapshot_dict(); s["version"] = -1; cases.append((s, "version"))
    s = snapshot_dict(); s["account"] = "acc-7"; s["version"] = "12"; cases.append((s, "version"))
    s = snapshot_dict(); s["tokens"] = {"a": 1}; cases.append((s, "tokens"))
    s = snapshot_dict()
    second = dict(s["groups"][3]); second["id"] = "g-roam2"; s["groups"].append(second)
    cases.append((s, "groups"))
    for snap, field in cases:
        _refused(lambda: GroupBook.from_snapshot(snap, SITE), field)


def test_delta_returns_new_book_and_leaves_old_one_alone():
    b = build_book()
    before = b.to_snapshot(with_history=True)
    d = _delta(tokens_upsert=[_tok("04FFEE0011", ["g-staff"], expires_s=1767225600)],
               tokens_remove=["card0001"])
    b2 = b.apply_delta(d, SITE)
    assert b2.version == 13
    assert b2.token("04ffee0011")["expires_s"] == 1767225600
    assert b2.token("CARD0001") is None
    assert b.to_snapshot(with_history=True) == before
    assert b2.token_count() == 6


def test_delta_version_mismatch():
    b = build_book()
    try:
        b.apply_delta({"base_version": 11, "version": 13}, SITE)
    except VersionMismatch as e:
        assert e.field == "base_version" and e.value == 11 and e.current_version == 12
    else:
        raise AssertionError("a delta on the wrong base was applied")
    _refused(lambda: b.apply_delta({"base_version": 12, "version": 12}, SITE), "version")


def test_delta_refused_whole_when_any_item_is_wrong():
    b = build_book()
    before = b.to_snapshot(with_history=True)
    d = _delta(tokens_upsert=[_tok("NEW1", ["g-guests"]), _tok("NEW2", ["g-guests"], status="maybe")],
               tokens_remove=["CARD0001"],
               groups_upsert=[dict(snapshot_dict()["groups"][1], name="Renamed")])
    _refused(lambda: b.apply_delta(d, SITE), "tokens_upsert[1].status")
    assert b.to_snapshot(with_history=True) == before
    assert b.token("NEW1") is None and b.group("g-guests").name == "Guests"


def test_delta_cross_references():
    b = build_book()
    # a group still holding tokens cannot go
    _refused(lambda: b.apply_delta(_delta(groups_remove=["g-guests"]), SITE), "groups_remove[0]")
    # ... unless its tokens leave in the same delta
    b2 = b.apply_delta(_delta(groups_remove=["g-guests"],
                              tokens_remove=["CARD0001", "BLOCKED01", "OLD0001"],
                              tokens_upsert=[_tok("BOTH0001", ["g-staff"])]), SITE)
    assert b2.group("g-guests") is None
    assert b2.history[-1]["change"] == "delete" and b2.history[-1]["group_id"] == "g-guests"
    # a driver still holding tokens cannot go
    _refused(lambda: b.apply_delta(_delta(drivers_remove=["d-17"]), SITE), "drivers_remove[0]")
    b3 = b.apply_delta(_delta(drivers_remove=["d-17"], tokens_upsert=[_tok("04A1B2C3D4", ["g-staff"])]), SITE)
    assert b3.driver("d-17") is None and b3.token("04A1B2C3D4")["driver"] is None
    # a group with drivers cannot go
    e = _refused(lambda: b.apply_delta(_delta(groups_remove=["g-staff"],
                                              tokens_remove=["04A1B2C3D4", "BOTH0001"]), SITE),
                 "groups_remove[0]")
    assert "1 drivers" in str(e)
    b4 = b3.apply_delta(_delta(base_version=13, version=14, groups_remove=["g-staff"],
                               tokens_remove=["04A1B2C3D4", "BOTH0001"]), SITE)
    assert b4.group("g-staff") is None
    # the kind of a group never changes
    g = dict(snapshot_dict()["groups"][1], kind="drivers")
    _refused(lambda: b.apply_delta(_delta(groups_upsert=[g]), SITE), "groups_upsert[0].kind")
    # removing what is not there is an error: the cloud and the edge disagree
    _refused(lambda: b.apply_delta(_delta(tokens_remove=["NOPE"]), SITE), "tokens_remove[0]")
    _refused(lambda: b.apply_delta(_delta(tokens_upsert=[_tok("A1", ["g-guests"]), _tok("a1", ["g-guests"])]),
                                   SITE), "tokens_upsert[1].uid")
    # a token in a group removed by the same delta
    _refused(lambda: b.apply_delta(_delta(groups_remove=["g-adhoc"], groups_upsert=[]), SITE).apply_delta(
        _delta(base_version=13, version=14, tokens_upsert=[_tok("X", ["g-adhoc"])]), SITE),
        "tokens_upsert[0].groups[0]")


def test_delta_group_changes_are_in_history():
    b = build_book()
    g = snapshot_dict()["groups"][0]
    g["tariff"]["energy_m_per_kwh"] = 390
    g["prioritised"] = False
    b2 = b.apply_delta(_delta(groups_upsert=[g]), SITE, by="sync:c-1", now_s=5000)
    new = b2.history[len(b.history):]
    assert [(h["change"], h["group_id"], h["by"], h["at_s"]) for h in new] == [
        ("tariff", "g-staff", "sync:c-1", 5000), ("prioritised", "g-staff", "sync:c-1", 5000)]
    assert new[0]["before"]["energy_m_per_kwh"] == 350 and new[0]["after"]["energy_m_per_kwh"] == 390
    assert len(b.history) == 4   # the old book's history did not grow


def test_refcounts_stay_consistent_through_deltas():
    b = build_book()
    b = b.apply_delta(_delta(tokens_upsert=[_tok("CARD0001", ["g-staff"])]), SITE)  # moved out of guests
    b = b.apply_delta({"base_version": 13, "version": 14, "tokens_remove": ["BLOCKED01", "OLD0001"]}, SITE)
    # g-guests still has BOTH0001
    _refused(lambda: b.apply_delta({"base_version": 14, "version": 15, "groups_remove": ["g-guests"]}, SITE),
             "groups_remove[0]")
    b = b.apply_delta({"base_version": 14, "version": 15, "tokens_remove": ["BOTH0001"],
                       "groups_remove": ["g-guests"]}, SITE)
    assert b.group("g-guests") is None


def test_local_operations_validate_and_record_history():
    b = build_book()
    b2 = b.rename_group("g-guests", "Hotel guests", "installer:anna", 3000)
    assert b2.group("g-guests").name == "Hotel guests" and b.group("g-guests").name == "Guests"
    assert b2.history[-1] == {"at_s": 3000, "by": "installer:anna", "group_id": "g-guests",
                              "change": "name", "before": "Guests", "after": "Hotel guests"}
    b3 = b2.set_tariff("g-guests", {"currency": "EUR", "energy_m_per_kwh": 300}, "installer:anna", 3100)
    assert b3.group("g-guests").tariff["energy_m_per_kwh"] == 300
    b4 = b3.set_prioritised("g-guests", True, "installer:anna", 3200)
    assert b4.group("g-guests").prioritised
    b5 = b4.set_active_on("g-guests", {"site": True}, SITE, "installer:anna", 3300)
    assert b5.group("g-guests").active_at(SITE, "CP001", 1)
    b6 = b5.set_windows("g-roam", [{"days": [6], "start": "10:00", "end": "12:00"}], "installer:anna", 3400)
    assert b6.group("g-roam").to_dict()["windows"] == [{"days": [6], "start": "10:00", "end": "12:00"}]
    assert [h["change"] for h in b6.history[len(b.history):]] == ["name", "tariff", "prioritised",
                                                                  "active_on", "windows"]
    _refused(lambda: b.rename_group("nope", "x", "me", 1), "group_id")
    _refused(lambda: b.rename_group("g-guests", "", "me", 1), "name")
    _refused(lambda: b.set_tariff("g-staff", None, "me", 1), "tariff")
    _refused(lambda: b.set_tariff("g-adhoc", {"currency": "EUR", "energy_m_per_kwh": -1}, "me", 1),
             "tariff.energy_m_per_kwh")
    _refused(lambda: b.set_active_on("g-staff", {"stations": ["CP404"]}, SITE, "me", 1), "active_on.stations[0]")
    _refused(lambda: b.set_windows("g-staff", [], "me", 1), "windows")
    _refused(lambda: b.set_prioritised("g-staff", "yes", "me", 1), "prioritised")
    _refused(lambda: b.rename_group("g-staff", "x", "", 1), "by")


def test_create_group_rules():
    b = build_book()
    g = {"id": "g-fleet", "name": "Fleet", "kind": "drivers", "billing": "record_only",
         "active_on": {"stations": ["CP001"]}}
    b2 = b.create_group(g, SITE, "installer", 10)
    assert b2.group("g-fleet").state == "active" and b.group("g-fleet") is None
    assert b2.history[-1]["change"] == "create"
    _refused(lambda: b2.create_group(g, SITE, "installer", 11), "group.id")
    roam = dict(snapshot_dict()["groups"][3], id="g-roam2")
    _refused(lambda: b.create_group(roam, SITE, "installer", 11), "group.kind")
    # after archiving the first one, a new eRoaming group may be created
    b3 = b.archive_group("g-roam", "installer", 12).create_group(roam, SITE, "installer", 13)
    assert b3.group("g-roam2").kind == "eroaming"


def test_archive_keeps_everything_and_blocks_edits():
    b = build_book()
    b2 = b.archive_group("g-guests", "installer", 20)
    assert b2.group("g-guests").state == "archived"
    assert b2.token("CARD0001") is not None
    assert b2.history[-1]["change"] == "state" and b2.history[-1]["after"] == "archived"
    _refused(lambda: b2.archive_group("g-guests", "installer", 21), "group_id")
    _refused(lambda: b2.set_prioritised("g-guests", True, "installer", 21), "group_id")
    assert b2.rename_group("g-guests", "Old guests", "installer", 22).group("g-guests").name == "Old guests"


def test_delete_group():
    b = build_book()
    e = _refused(lambda: b.delete_group("g-guests", 3, "installer", 30), "group_id")
    assert "3 sessions" in str(e)
    b2 = b.delete_group("g-guests", 0, "installer", 31)
    assert b2.group("g-guests") is None
    assert b2.token("CARD0001") is None                    # no group left: removed
    assert b2.token("BOTH0001")["groups"] == ["g-staff"]   # kept with its other group
    assert b2.history[-1]["change"] == "delete" and b2.history[-1]["before"]["name"] == "Guests"
    b3 = b.delete_group("g-staff", 0, "installer", 32)
    assert b3.driver("d-17") is None and b3.token("04A1B2C3D4") is None
    assert b3.token("BOTH0001")["groups"] == ["g-guests"]
    # the delete left consistent reference counts: the guests group can now go by delta
    b4 = b3.apply_delta(_delta(groups_remove=["g-guests"],
                               tokens_remove=["CARD0001", "BLOCKED01", "OLD0001", "BOTH0001"]), SITE)
    assert b4.group("g-guests") is None


def test_hostile_delta_shapes_are_refused_cleanly():
    b = build_book()
    cases = [
        (_delta(tokens_remove=[None]), "tokens_remove[0]"),
        (_delta(tokens_remove=[["04A1B2C3D4"]]), "tokens_remove[0]"),
        (_delta(groups_remove=[{"id": "g-guests"}]), "groups_remove[0]"),
        (_delta(tokens_upsert="04A1B2C3D4"), "tokens_upsert"),
        (_delta(tokens_upsert=[_tok("X", [["g-staff"]])]), "tokens_upsert[0].groups[0]"),
        (_delta(tokens_upsert=[_tok("X", "g-staff")]), "tokens_upsert[0].groups"),
        (_delta(drivers_upsert=[{"id": "d-1", "name": 7, "group": "g-staff", "email": "x"}]),
         "drivers_upsert[0].name"),
        (_delta(tokens_upsert=[_tok("X", ["g-staff"], expires_s=True)]), "tokens_upsert[0].expires_s"),
        (_delta(tokens_upsert=[_tok("X", ["g-staff"], expires_s=-1)]), "tokens_upsert[0].expires_s"),
        (_delta(groups_upsert=[dict(snapshot_dict()["groups"][3], id="g-roam2")]), "groups_upsert"),
        ({"base_version": "12", "version": 13}, "base_version"),
        ({"base_version": 12, "version": 13, "tokens": [], "tokens_upsert": {}}, "tokens_upsert"),
        ([], "delta"),
    ]
    for delta, field in cases:
        _refused(lambda: b.apply_delta(delta, SITE), field)
    huge = _delta(tokens_remove=["x"] * 100001)
    _refused(lambda: b.apply_delta(huge, SITE), "tokens_remove")


def test_empty_delta_moves_the_version_only():
    b = build_book()
    b2 = b.apply_delta({"base_version": 12, "version": 15}, SITE)
    assert b2.version == 15 and b2.to_snapshot()["tokens"] == b.to_snapshot()["tokens"]
    assert b2.history == b.history


def test_stored_history_is_validated():
    snap = build_book().to_snapshot(with_history=True)
    del snap["history"][0]["by"]
    _refused(lambda: GroupBook.from_snapshot(snap, SITE), "history[0].by")
    snap = build_book().to_snapshot(with_history=True)
    snap["history"] = "lots"
    _refused(lambda: GroupBook.from_snapshot(snap, SITE), "history")


def test_snapshot_must_match_the_site():
    from edge.core.topology import Site
    from test_domain_data import site_dict
    d = site_dict()
    del d["charging_groups"][1]          # the visitors group and CP101 are gone
    small = Site.from_dict(d)
    e = _refused(lambda: GroupBook.from_snapshot(snapshot_dict(), small), "groups[0].active_on.connectors[0][0]")
    assert "'CP101'" in str(e)


def test_removing_a_group_never_touches_the_old_books_counters():
    b = build_book()
    before = (dict(b._token_refs), dict(b._driver_refs), dict(b._driver_group_refs))
    b2 = b.apply_delta(_delta(groups_remove=["g-adhoc"]), SITE)
    b3 = b2.apply_delta({"base_version": 13, "version": 14, "groups_remove": ["g-guests"],
                         "tokens_remove": ["CARD0001", "BLOCKED01", "OLD0001"],
                         "tokens_upsert": [_tok("BOTH0001", ["g-staff"])]}, SITE)
    assert (b._token_refs, b._driver_refs, b._driver_group_refs) == before
    assert b3.group("g-guests") is None and b2.group("g-guests") is not None
    assert b2.token("CARD0001") is not None


def test_a_zero_counter_left_by_one_delta_is_not_popped_from_that_book_by_the_next():
    b = build_book().apply_delta(_delta(drivers_remove=["d-17"],
                                        tokens_upsert=[_tok("04A1B2C3D4", ["g-staff"])]), SITE)
    snapshot_of_counters = dict(b._driver_group_refs)
    b2 = b.apply_delta({"base_version": 13, "version": 14, "groups_remove": ["g-staff"],
                        "tokens_remove": ["04A1B2C3D4", "BOTH0001"]}, SITE)
    assert b2.group("g-staff") is None
    assert b._driver_group_refs == snapshot_of_counters
