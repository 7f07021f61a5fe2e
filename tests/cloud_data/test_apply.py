"""Downstream apply: all or nothing, persisted, refusals reported upstream."""
from __future__ import annotations

import msgpack

from .cloud_samples import SITE_ID, delta, snapshot
from edge.cloud import apply, codec, messages
from edge.cloud.codec import Limits

LISTS = messages.down_topic(SITE_ID, "snapshot")
CMD = messages.down_topic(SITE_ID, "remote_start")
ACK = messages.down_topic(SITE_ID, "ack")


def msg(msg_type, body, msg_id="c-1", at_s=1_763_900_000, site=SITE_ID):
    return messages.build(site, msg_type, body, msg_id, at_s, validate=False)


def send(edge, msg_type, body, msg_id="c-1"):
    topic, payload = msg(msg_type, body, msg_id)
    return edge.handler.handle(topic, payload)


def error_records(edge):
    return [r.decoded_body() for r in edge.outbox.pending(1000) if r.kind == "error"]


def published_types(handled):
    return [codec.decode_payload(p, 1 << 20)["type"] for _, p, _ in handled.publish]


def test_snapshot_applied_swapped_and_stored(edge):
    before = edge.holder.book
    done = send(edge, "snapshot", snapshot(3, 20))
    assert done.outcome == apply.APPLIED and done.version == 3
    assert edge.holder.version == 3 and edge.holder.book is not before
    assert edge.holder.book.token("t000000004")["driver"] == "d-1"
    assert edge.store.stored_version() == 3
    assert error_records(edge) == []


def test_applied_lists_drive_authorization(edge):
    send(edge, "snapshot", snapshot(1, 10))
    staff = edge.holder.authorize("T000000000", "CP001", 1)
    assert staff.accepted and staff.group_id == "g-staff"
    # g-guests is only active on CP002
    guest = edge.holder.authorize("T000000001", "CP001", 1)
    assert not guest.accepted
    assert not edge.holder.authorize("T000009999", "CP001", 1).accepted


def test_delta_applied_on_its_version(edge):
    send(edge, "snapshot", snapshot(1, 10))
    done = send(edge, "delta", delta(1, 2, add=[500], remove=[1], block=[3]), "c-2")
    assert done.outcome == apply.APPLIED and edge.holder.version == 2
    book = edge.holder.book
    assert book.token("T000000500") is not None and book.token("T000000001") is None
    assert book.token("T000000003")["status"] == "blocked"
    assert edge.store.stored_version() == 2


def test_delta_on_wrong_version_requests_snapshot_and_changes_nothing(edge):
    send(edge, "snapshot", snapshot(5, 10))
    book = edge.holder.book
    done = send(edge, "delta", delta(3, 4 + 3, add=[77]), "c-gap")
    assert done.outcome == apply.REFUSED and done.error.code == codec.VERSION_MISMATCH
    assert edge.holder.book is book and edge.store.stored_version() == 5
    assert published_types(done) == ["snapshot_request"]
    req = codec.decode_payload(done.publish[0][1], 1 << 20)
    assert done.publish[0][0] == messages.up_topic(SITE_ID, "snapshot_request")
    assert req["body"] == {"have_version": 5, "reason": "version_mismatch", "ref_id": "c-gap"}
    [err] = error_records(edge)
    assert err["code"] == "version_mismatch" and err["ref_id"] == "c-gap" and err["ref_type"] == "delta"
    assert err["field"] == "body.base_version" and err["lists_version"] == 5


def test_delta_before_any_snapshot_requests_one(edge):
    done = send(edge, "delta", delta(0, 1, add=[1]))
    assert done.outcome == apply.REFUSED and done.error.code == codec.VERSION_MISMATCH
    req = codec.decode_payload(done.publish[0][1], 1 << 20)
    assert req["body"]["have_version"] is None
    assert edge.holder.version == 0 and edge.store.stored_version() is None


def test_redelivered_snapshot_and_delta_are_ignored(edge):
    send(edge, "snapshot", snapshot(1, 10))
    send(edge, "delta", delta(1, 2, add=[42]), "c-2")
    book = edge.holder.book
    assert send(edge, "delta", delta(1, 2, add=[42]), "c-2").outcome == apply.DUPLICATE
    assert send(edge, "snapshot", snapshot(2, 10)).outcome == apply.DUPLICATE
    assert edge.holder.book is book and error_records(edge) == []


def test_older_snapshot_is_refused(edge):
    send(edge, "snapshot", snapshot(7, 10))
    done = send(edge, "snapshot", snapshot(6, 3), "c-old")
    assert done.outcome == apply.REFUSED and done.error.code == codec.STALE_VERSION
    assert edge.holder.version == 7 and edge.holder.book.token_count() == 10
    assert [e["code"] for e in error_records(edge)] == ["stale_version"]


def test_invalid_token_deep_in_snapshot_changes_nothing(edge):
    send(edge, "snapshot", snapshot(1, 10))
    book = edge.holder.book
    snap = snapshot(2, 6000)
    snap["tokens"][5000]["status"] = "stolen"
    done = send(edge, "snapshot", snap, "c-bad")
    assert done.outcome == apply.REFUSED and done.error.code == codec.INVALID
    assert done.error.field == "body.tokens[5000].status"
    assert edge.holder.book is book and edge.store.stored_version() == 1
    [err] = error_records(edge)
    assert err["field"] == "body.tokens[5000].status" and err["value"] == "stolen"
    assert done.publish == []  # a refused snapshot is not answered by asking for another one


def test_invalid_delta_refused_and_snapshot_requested(edge):
    send(edge, "snapshot", snapshot(1, 10))
    bad = delta(1, 2, add=[11, 12])
    bad["tokens_upsert"][1]["groups"] = ["g-nope"]
    done = send(edge, "delta", bad, "c-bad")
    assert done.error.code == codec.INVALID and done.error.field == "body.tokens_upsert[1].groups[0]"
    assert edge.holder.version == 1 and edge.holder.book.token("T000000011") is None
    req = codec.decode_payload(done.publish[0][1], 1 << 20)
    assert req["body"]["reason"] == "delta_refused"
    # the store was not touched: a restart comes back at version 1
    edge.restart()
    assert edge.holder.version == 1 and edge.holder.book.token("T000000011") is None


def test_malformed_msgpack_refused_with_error_record(edge):
    send(edge, "snapshot", snapshot(1, 10))
    book = edge.holder.book
    for payload in (b"\xc1", b"not msgpack at all \xff", msgpack.packb({"v": 1})[:-1] + b"\x00\x00",
                    b""):
        done = edge.handler.handle(LISTS, payload)
        assert done.outcome == apply.REFUSED
        assert done.error.code in (codec.MALFORMED, codec.SCHEMA, codec.INVALID), done
    assert edge.holder.book is book and edge.store.stored_version() == 1
    codes = [e["code"] for e in error_records(edge)]
    assert len(codes) == 4 and codes[0] == "malformed"


def test_wrong_schema_version_refused(edge):
    send(edge, "snapshot", snapshot(1, 10))
    payload = codec.encode({"v": 2, "type": "snapshot", "id": "c-v2", "site": SITE_ID,
                            "at_s": 1, "body": snapshot(9, 3)})
    done = edge.handler.handle(LISTS, payload)
    assert done.error.code == codec.SCHEMA and done.error.ref_id == "c-v2"
    assert edge.holder.version == 1
    [err] = error_records(edge)
    assert err["code"] == "schema_version" and err["ref_type"] == "snapshot"


def test_oversized_payload_refused_before_decoding(db_path, site, clock, edge):
    send(edge, "snapshot", snapshot(1, 10))
    edge.handler.limits = Limits(snapshot_bytes=4096, delta_bytes=1024)
    done = send(edge, "snapshot", snapshot(2, 200), "c-big")
    assert done.error.code == codec.TOO_LARGE
    assert edge.holder.version == 1 and edge.store.stored_version() == 1
    # a delta fits the topic's (snapshot) limit but not the delta limit
    done = send(edge, "delta", delta(1, 2, add=range(100, 140)), "c-bigdelta")
    assert done.error.code == codec.TOO_LARGE and done.error.ref_id == "c-bigdelta"
    assert published_types(done) == ["snapshot_request"]
    assert [e["code"] for e in error_records(edge)] == ["too_large", "too_large"]
    assert edge.holder.version == 1


def test_wrong_site_and_wrong_topic_refused(edge):
    topic, payload = msg("snapshot", snapshot(1, 3), site="other")
    done = edge.handler.handle(LISTS, payload)
    assert done.error.code == codec.WRONG_SITE
    topic, payload = msg("snapshot", snapshot(1, 3))
    assert edge.handler.handle(CMD, payload).error.code == codec.WRONG_TOPIC
    assert edge.handler.handle("evc/other/down/lists", payload).error.code == codec.WRONG_TOPIC
    assert edge.handler.handle("evc/demo/down/extra", payload).error.code == codec.WRONG_TOPIC
    assert edge.holder.version == 0


def test_applied_lists_survive_reopen(edge):
    send(edge, "snapshot", snapshot(1, 50))
    send(edge, "delta", delta(1, 2, add=[900], remove=[2]), "c-2")
    send(edge, "delta", delta(2, 3, block=[4]), "c-3")
    expected = edge.holder.book.to_snapshot()
    edge.restart()
    assert edge.holder.version == 3
    assert edge.holder.book.to_snapshot() == expected
    assert edge.holder.authorize("T000000900", "CP002", 1).accepted
    # and deltas continue on the restored version
    assert send(edge, "delta", delta(3, 4, add=[901]), "c-4").outcome == apply.APPLIED


def test_site_limit_accepted_persisted_and_expires(edge, clock):
    body = {"request_id": "sl-1", "limit_id": "dso-1", "max_da": 320,
            "expires_s": int(clock()) + 600, "reason": "grid_operator"}
    done = send(edge, "site_limit", body)
    assert done.outcome == apply.SITE_LIMIT and done.site_limit["max_da"] == 320
    assert edge.handler.external_limit_da() == 320
    edge.restart()
    assert edge.handler.external_limit_da() == 320
    clock.advance(600)
    assert edge.handler.external_limit_da() is None
    edge.restart()
    assert edge.handler.external_limit_da() is None


def test_site_limit_cleared_by_null(edge, clock):
    send(edge, "site_limit", {"request_id": "sl-1", "limit_id": "a", "max_da": 100,
                              "expires_s": int(clock()) + 60, "reason": "time_of_day"})
    done = send(edge, "site_limit", {"request_id": "sl-2", "limit_id": "a", "max_da": None,
                                     "reason": "time_of_day"})
    assert done.outcome == apply.SITE_LIMIT and edge.handler.external_limit_da() is None


def test_expired_site_limit_refused_and_answered(edge, clock):
    send(edge, "site_limit", {"request_id": "sl-1", "limit_id": "a", "max_da": 100,
                              "expires_s": int(clock()) + 60, "reason": "other"})
    done = send(edge, "site_limit", {"request_id": "sl-2", "limit_id": "b", "max_da": 50,
                                     "expires_s": int(clock()) - 1, "reason": "other"})
    assert done.outcome == apply.REFUSED and done.error.code == codec.EXPIRED
    reply = codec.decode_payload(done.publish[0][1], 1 << 20)
    assert reply["type"] == "command_reply"
    assert reply["body"]["request_id"] == "sl-2" and reply["body"]["status"] == "rejected"
    assert reply["body"]["reason"] == "expired"
    assert edge.handler.external_limit_da() == 100


def test_remote_start_handed_to_transport(edge):
    body = {"request_id": "rs-1", "station": "CP001", "connector": 1, "payment_ref": "pi_42"}
    done = send(edge, "remote_start", body)
    assert done.outcome == apply.COMMAND
    assert done.command == {"type": "remote_start", "request_id": "rs-1", "station": "CP001",
                            "connector": 1, "payment_ref": "pi_42", "group_id": None}
    done = send(edge, "remote_stop", {"request_id": "rs-2", "session_id": "s-1"})
    assert done.command == {"type": "remote_stop", "request_id": "rs-2", "session_id": "s-1"}


def test_invalid_remote_start_rejected_with_reply(edge):
    done = send(edge, "remote_start", {"request_id": "rs-9", "station": "CP001", "connector": "1",
                                       "payment_ref": "pi"})
    assert done.outcome == apply.REFUSED and done.error.field == "body.connector"
    reply = codec.decode_payload(done.publish[0][1], 1 << 20)
    assert reply["body"]["request_id"] == "rs-9" and reply["body"]["reason"] == "invalid"
    assert [e["field"] for e in error_records(edge)] == ["body.connector"]


def test_ack_removes_outbox_records(edge):
    ids = [edge.outbox.enqueue("session", "s-%d" % i, {"n": i}) for i in range(5)]
    topic, payload = msg("ack", {"ids": ids[:3] + ["zz-1"]})
    done = edge.handler.handle(topic, payload)
    assert done.outcome == apply.ACK and done.acked == 3
    assert [r.id for r in edge.outbox.pending(10)] == ids[3:]


def test_flood_of_garbage_is_rate_limited(edge, clock):
    for _ in range(100):
        assert edge.handler.handle(LISTS, b"\xc1").outcome == apply.REFUSED
    assert edge.outbox.count() == 30 and edge.handler.dropped_error_records == 70
    clock.advance(61)
    edge.handler.handle(LISTS, b"\xc1")
    assert edge.outbox.count() == 31


def test_startup_asks_for_snapshot_only_without_lists(edge):
    [(topic, payload, retain)] = edge.handler.startup_messages()
    assert topic == messages.up_topic(SITE_ID, "snapshot_request") and not retain
    assert codec.decode_payload(payload, 1 << 20)["body"]["reason"] == "no_lists"
    send(edge, "snapshot", snapshot(1, 3))
    assert edge.handler.startup_messages() == []


def test_hostile_payloads_never_raise(edge):
    send(edge, "snapshot", snapshot(1, 5))
    book = edge.holder.book
    hostile = [
        msgpack.packb([1, 2, 3]),
        msgpack.packb({"v": 1, "type": "snapshot", "id": "x", "site": SITE_ID, "at_s": 1, "body": []}),
        msgpack.packb({"v": 1, "type": "snapshot", "id": "x", "site": SITE_ID, "at_s": 1,
                       "body": {"version": 2, "groups": None, "drivers": [], "tokens": []}}),
        msgpack.packb({"v": 1, "type": "snapshot", "id": "x", "site": SITE_ID, "at_s": 1,
                       "body": {"version": 2.0, "groups": [], "drivers": [], "tokens": []}}),
        msgpack.packb({"v": 1, "type": "snapshot", "id": "x", "site": SITE_ID, "at_s": 1,
                       "body": {"version": 2, "groups": [{"id": b"\x00"}], "drivers": [], "tokens": []}},
                      use_bin_type=True),
        msgpack.packb({"v": 1, "type": "delta", "id": "x" * 65, "site": SITE_ID, "at_s": 1, "body": {}}),
        msgpack.packb({"v": 1, "type": "launch", "id": "x", "site": SITE_ID, "at_s": 1, "body": {}}),
        b"\x91" * 5000 + b"\xc0",
    ]
    for payload in hostile:
        done = edge.handler.handle(LISTS, payload)
        assert done.outcome == apply.REFUSED, payload[:40]
    assert edge.holder.book is book


def test_store_failure_keeps_old_lists_and_does_not_raise(edge, caplog):
    send(edge, "snapshot", snapshot(1, 10))
    book = edge.holder.book
    edge.conn.execute("PRAGMA query_only = ON")  # every write now fails inside SQLite
    done = send(edge, "snapshot", snapshot(2, 20), "c-2")
    assert done.outcome == apply.REFUSED and done.error.code == codec.INTERNAL
    assert done.error.ref_id == "c-2" and done.error.ref_type == "snapshot"
    assert edge.holder.book is book
    done = send(edge, "delta", delta(1, 2, add=[50]), "c-3")
    assert done.outcome == apply.REFUSED and done.error.code == codec.INTERNAL
    assert published_types(done) == ["snapshot_request"]
    assert edge.holder.book is book
    edge.conn.execute("PRAGMA query_only = OFF")
    edge.restart()
    assert edge.holder.version == 1 and edge.holder.book.token_count() == 10
    # the delta that could not be stored is applied when it comes again
    assert send(edge, "delta", delta(1, 2, add=[50]), "c-3").outcome == apply.APPLIED


def test_lists_refused_by_a_changed_site_config_lead_to_a_snapshot_request(edge):
    import copy
    from edge.core.topology import Site
    from .cloud_samples import SITE_DICT
    send(edge, "snapshot", snapshot(4, 10))  # g-guests is active on CP002
    d = copy.deepcopy(SITE_DICT)
    d["charging_groups"][0]["stations"].pop()  # CP002 removed from the configuration
    edge.site = Site.from_dict(d)
    edge.restart()
    assert edge.holder.version == 0
    [(topic, payload, _)] = edge.handler.startup_messages()
    assert codec.decode_payload(payload, 1 << 20)["body"]["reason"] == "no_lists"


def test_snapshot_with_unknown_optional_fields_applies_and_survives_a_restart(edge):
    body = snapshot(4, 10)
    body["account_id"] = "acc-1"
    body["groups"][0]["account_id"] = "acc-7"
    body["tokens"][0]["self_registered"] = True
    topic, payload = msg("snapshot", body)
    # a newer cloud may also add envelope fields inside schema 1
    env = codec.decode_payload(payload, 1 << 20)
    env["trace_id"] = "t-1"
    done = edge.handler.handle(topic, codec.encode(env))
    assert done.outcome == apply.APPLIED and edge.holder.version == 4
    assert error_records(edge) == []
    gid = body["groups"][0]["id"]
    edge.restart()
    book = edge.holder.book
    assert book.version == 4 and book.group(gid).to_dict()["account_id"] == "acc-7"
    assert book.token(body["tokens"][0]["uid"])["self_registered"] is True
    assert book.to_snapshot()["account_id"] == "acc-1"


def test_snapshot_with_a_wrong_type_in_a_known_field_is_refused_as_before(edge):
    send(edge, "snapshot", snapshot(4, 10))
    body = snapshot(5, 10)
    body["groups"][0]["account_id"] = "acc-7"
    body["tokens"][2]["expires_s"] = "2026-01-01"
    done = send(edge, "snapshot", body, "c-bad")
    assert done.outcome == apply.REFUSED and done.error.code == codec.INVALID
    assert done.error.field == "body.tokens[2].expires_s"
    assert edge.holder.version == 4
    [err] = error_records(edge)
    assert err["field"] == "body.tokens[2].expires_s"
