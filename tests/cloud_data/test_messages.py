"""Topics, body validators and builders of docs/cloud-protocol.md."""
from __future__ import annotations

import pytest

from edge.cloud import codec, messages
from edge.cloud.codec import ProtocolError

NOW = 1_763_900_000


def refused(validator, body, field, code=codec.INVALID, now_s=NOW):
    with pytest.raises(ProtocolError) as info:
        validator(body, now_s)
    assert info.value.field == field, str(info.value)
    assert info.value.code == code
    return info.value


def test_topics():
    assert messages.down_topic("demo", "snapshot") == "evc/demo/down/lists"
    assert messages.down_topic("demo", "site_limit") == "evc/demo/down/cmd"
    assert messages.up_topic("demo", "records") == "evc/demo/up/records"
    assert messages.up_topic("demo", "online") == "evc/demo/up/online"
    assert messages.down_subscription("demo") == "evc/demo/down/#"
    assert messages.up_subscription() == "evc/+/up/#"
    assert messages.down_topic_name("demo", "evc/demo/down/cmd") == "cmd"
    assert messages.down_topic_name("demo", "evc/demo/down/cmd/x") is None
    assert messages.down_topic_name("demo", "evc/demo2/down/cmd") is None
    assert messages.split_up_topic("evc/demo/up/records") == ("demo", "records")
    assert messages.split_up_topic("evc/demo/up/nope") is None
    assert set(messages.types_on_down_topic("lists")) == {"snapshot", "delta"}


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "x" * 65, "with space", None, 5])
def test_site_id_refused(bad):
    with pytest.raises(ValueError):
        messages.down_subscription(bad)


def test_snapshot_body():
    body = {"version": 3, "groups": [], "drivers": [], "tokens": []}
    assert messages.validate_snapshot(body) is body
    refused(messages.validate_snapshot, dict(body, version=0), "body.version")
    refused(messages.validate_snapshot, dict(body, version="3"), "body.version")
    refused(messages.validate_snapshot, dict(body, tokens={}), "body.tokens")
    refused(messages.validate_snapshot, dict(body, history=[]), "body.history")
    assert messages.validate_snapshot(dict(body, account_id="acc-7"))["account_id"] == "acc-7"
    refused(messages.validate_snapshot, {"version": 3, "groups": [], "drivers": []}, "body.tokens")


def test_delta_body_fills_missing_lists():
    out = messages.validate_delta({"base_version": 2, "version": 3, "tokens_remove": ["A"]})
    assert out["tokens_remove"] == ["A"] and out["groups_upsert"] == [] and len(out) == 8
    refused(messages.validate_delta, {"base_version": 3, "version": 3}, "body.version")
    refused(messages.validate_delta, {"base_version": -1, "version": 3}, "body.base_version")
    refused(messages.validate_delta, {"base_version": 1, "version": 3, "tokens_upsert": None},
            "body.tokens_upsert")
    refused(messages.validate_delta, {"base_version": 1, "version": 3,
                                      "tokens_remove": ["x"] * 100_001}, "body.tokens_remove")


def test_remote_start_body():
    ok = {"request_id": "r1", "station": "CP001", "connector": 2, "payment_ref": "pi_1"}
    assert messages.validate_remote_start(ok)["group_id"] is None
    refused(messages.validate_remote_start, dict(ok, connector=0), "body.connector")
    refused(messages.validate_remote_start, dict(ok, connector=True), "body.connector")
    refused(messages.validate_remote_start, dict(ok, station="CP 1"), "body.station")
    refused(messages.validate_remote_start, dict(ok, payment_ref="x" * 129), "body.payment_ref")
    refused(messages.validate_remote_start, dict(ok, group_id=""), "body.group_id")
    # a field this version does not know is ignored, a wrong known one still refused
    assert messages.validate_remote_start(dict(ok, channel="app"))["station"] == "CP001"
    refused(messages.validate_remote_start, dict(ok, channel="app", connector="2"), "body.connector")
    del ok["request_id"]
    refused(messages.validate_remote_start, ok, "body.request_id")


def test_site_limit_body():
    ok = {"request_id": "r", "limit_id": "l", "max_da": 200, "expires_s": NOW + 60, "reason": "grid_operator"}
    assert messages.validate_site_limit(ok, NOW)["max_da"] == 200
    refused(messages.validate_site_limit, dict(ok, expires_s=NOW), "body.expires_s", codec.EXPIRED)
    refused(messages.validate_site_limit, dict(ok, expires_s=NOW + 367 * 86400), "body.expires_s")
    refused(messages.validate_site_limit, dict(ok, max_da=-1), "body.max_da")
    refused(messages.validate_site_limit, dict(ok, reason="because"), "body.reason")
    no_expiry = dict(ok)
    del no_expiry["expires_s"]
    refused(messages.validate_site_limit, no_expiry, "body.expires_s")
    clear = dict(no_expiry, max_da=None)
    assert messages.validate_site_limit(clear, NOW)["max_da"] is None


def test_ack_body():
    assert messages.validate_ack({"ids": ["a-1", "a-2"]}) == {"ids": ["a-1", "a-2"]}
    refused(messages.validate_ack, {"ids": []}, "body.ids")
    refused(messages.validate_ack, {"ids": ["ok", 5]}, "body.ids[1]")
    refused(messages.validate_ack, {"ids": ["x"] * 1001}, "body.ids")


def test_records_body():
    rec = {"id": "a-1", "kind": "session", "key": "s-1", "at_s": 5, "body": {}}
    assert messages.validate_records({"records": [rec]})
    refused(messages.validate_records, {"records": [dict(rec, at_s="5")]}, "body.records[0].at_s")
    assert messages.validate_records({"records": [rec, dict(rec, extra=1)]})
    refused(messages.validate_records, {"records": [rec, dict(rec, extra=1, kind=5)]},
            "body.records[1].kind")


def test_build_validates_unless_told_not_to():
    with pytest.raises(ProtocolError):
        messages.build("demo", "ack", {"ids": []}, "c-1", NOW)
    topic, payload = messages.build("demo", "ack", {"ids": []}, "c-1", NOW, validate=False)
    assert topic == "evc/demo/down/ack"
    assert codec.decode_envelope(payload, 1 << 16, "demo").body == {"ids": []}
    with pytest.raises(ValueError):
        messages.build("demo", "launch", {}, "c-1", NOW)


def test_upstream_builders_round_trip():
    t, p = messages.command_reply("demo", "e-1", NOW, "rs-1", "remote_start", "accepted", "accepted", "s-9")
    e = codec.decode_envelope(p, 1 << 16, "demo")
    assert t == "evc/demo/up/reply" and e.type == "command_reply" and e.body["session_id"] == "s-9"
    t, p = messages.online("demo", "e-2", NOW, False)
    e = codec.decode_envelope(p, 1 << 16, "demo")
    assert t == "evc/demo/up/online" and e.body == {"online": False, "lists_version": None,
                                                    "outbox_count": None}
    t, p = messages.snapshot_request("demo", "e-3", NOW, 0, "no_lists")
    assert codec.decode_envelope(p, 1 << 16, "demo").body == {"have_version": None, "reason": "no_lists"}
    with pytest.raises(ProtocolError):
        messages.command_reply("demo", "e-4", NOW, "rs-1", "remote_start", "maybe", "x")


def test_error_record_is_bounded_for_hostile_values():
    deep = []
    for _ in range(2000):
        deep = [deep]
    for value in (deep, list(range(100000)), "x" * 10000, {"k": b"\x00" * 5000}):
        rec = messages.error_record(ProtocolError("invalid", "body.x", value, "bad"), 3)
        assert len(rec["value"]) <= 200
        assert rec["field"] == "body.x" and rec["lists_version"] == 3
        codec.encode(rec)


def test_message_ids_unique_and_prefixed():
    ids = messages.MessageIds("e7")
    assert [ids(), ids()] == ["e7-1", "e7-2"]
    assert messages.MessageIds().prefix != messages.MessageIds().prefix


def test_sessions_request_and_export_bodies():
    ok = {"request_id": "sr-1", "from_s": 100, "to_s": 200}
    assert messages.validate_sessions_request(ok)["max_records"] is None
    refused(messages.validate_sessions_request, dict(ok, to_s=100), "body.to_s")
    refused(messages.validate_sessions_request, dict(ok, from_s="100"), "body.from_s")
    refused(messages.validate_sessions_request, dict(ok, max_records=501), "body.max_records")
    assert messages.DOWN_TOPIC_OF["sessions_request"] == "cmd"
    part = {"request_id": "sr-1", "part": 1, "last": True, "total": 0, "records": []}
    assert messages.validate_sessions_export(part)
    refused(messages.validate_sessions_export, dict(part, total=None), "body.total")
    refused(messages.validate_sessions_export, dict(part, part=0), "body.part")
    assert messages.up_topic("demo", "sessions_export") == "evc/demo/up/export"


def test_auth_request_and_reply_bodies():
    req = {"request_id": "ar-1", "token": "04AABB", "station": "CP001", "connector": None}
    assert messages.validate_auth_request(req)
    refused(messages.validate_auth_request, dict(req, token="x" * 37), "body.token")
    refused(messages.validate_auth_request, dict(req, connector=0), "body.connector")
    ok = {"request_id": "ar-1", "status": "accepted", "reason": "accepted", "group_id": "g-roam",
          "provider": "DE*ABC", "expires_s": NOW + 600, "tariff": None}
    assert messages.validate_auth_reply(ok)["group_id"] == "g-roam"
    no = {"request_id": "ar-2", "status": "rejected", "reason": "unknown_token"}
    assert messages.validate_auth_reply(no)["expires_s"] is None
    refused(messages.validate_auth_reply, dict(ok, group_id=None), "body.group_id")
    refused(messages.validate_auth_reply, dict(ok, expires_s=None), "body.expires_s")
    refused(messages.validate_auth_reply, dict(ok, status="maybe"), "body.status")
    refused(messages.validate_auth_reply, dict(ok, tariff=5), "body.tariff")
    assert messages.down_topic("demo", "auth_reply") == "evc/demo/down/auth"
    assert messages.down_topic_name("demo", "evc/demo/down/auth") == "auth"
