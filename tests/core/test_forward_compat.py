"""Forward compatibility inside a schema version: fields the edge does not know, on a
group, driver, token or the snapshot itself, are kept and written back out; the known
fields stay as strict as before (docs/cloud-protocol.md, "Compatibility")."""
from edge.core.book import GroupBook
from edge.core.errors import ValidationError
from test_domain_data import build_site, snapshot_dict

SITE = build_site()


def _newer_cloud_snapshot():
    s = snapshot_dict()
    s["account_tree"] = {"root": "acc-1"}
    s["groups"][0]["account_id"] = "acc-7"
    s["drivers"][0]["self_registered"] = True
    s["tokens"][1]["label"] = "blue card"
    return s


def test_unknown_optional_fields_apply_and_are_kept():
    book = GroupBook.from_snapshot(_newer_cloud_snapshot(), SITE)
    gid = snapshot_dict()["groups"][0]["id"]
    assert book.group(gid).extra == {"account_id": "acc-7"}
    assert book.group(gid).to_dict()["account_id"] == "acc-7"
    assert book.driver("d-17")["self_registered"] is True
    uid = snapshot_dict()["tokens"][1]["uid"]
    assert book.token(uid)["label"] == "blue card"
    out = book.to_snapshot()
    assert out["account_tree"] == {"root": "acc-1"}
    again = GroupBook.from_snapshot(out, SITE)
    assert again.to_snapshot() == out


def test_unknown_fields_survive_deltas_and_local_operations():
    book = GroupBook.from_snapshot(_newer_cloud_snapshot(), SITE)
    gid = snapshot_dict()["groups"][0]["id"]
    renamed = book.rename_group(gid, "New name", "installer:anna", 100)
    assert renamed.group(gid).to_dict()["account_id"] == "acc-7"
    delta = {"base_version": 12, "version": 13, "trace": "t-1",
             "tokens_upsert": [{"uid": "NEWCARD1", "groups": ["g-guests"], "status": "valid",
                                "expires_s": None, "driver": None, "provider": None,
                                "issuer": "acme"}]}
    after = renamed.apply_delta(delta, SITE)
    assert after.token("NEWCARD1")["issuer"] == "acme"
    assert after.to_snapshot()["account_tree"] == {"root": "acc-1"}
    assert after.group(gid).name == "New name" and after.group(gid).extra == {"account_id": "acc-7"}


def test_wrong_type_in_a_known_field_is_still_refused():
    s = _newer_cloud_snapshot()
    s["tokens"][1]["expires_s"] = "tomorrow"
    try:
        GroupBook.from_snapshot(s, SITE)
    except ValidationError as e:
        assert e.field == "tokens[1].expires_s", e.field
    else:
        raise AssertionError("a wrong type in a known field was accepted")


def test_field_names_must_be_texts_and_bounded():
    s = snapshot_dict()
    s["groups"][0][7] = "x"
    try:
        GroupBook.from_snapshot(s, SITE)
    except ValidationError as e:
        assert e.field == "groups[0]", e.field
    else:
        raise AssertionError("a non-text field name was accepted")
    s = snapshot_dict()
    for i in range(40):
        s["tokens"][0]["x%d" % i] = i
    try:
        GroupBook.from_snapshot(s, SITE)
    except ValidationError as e:
        assert e.field == "tokens[0]", e.field
    else:
        raise AssertionError("an item with 40 unknown fields was accepted")
