"""CloudLink + real Mosquitto + the reference cloud peer + SQLite: lists, refusals,
commands, site limits, acks, clean shutdown."""
from __future__ import annotations

import asyncio

import msgpack
import pytest

from edge.cloud import codec
from host_tools.cloud_peer import CloudPeer, down_topic

from .conftest import eventually
from .edge_harness import Edge
from .samples import SITE_ID, delta, snapshot


@pytest.fixture
def peer(broker):
    p = CloudPeer(port=broker.port).start()
    yield p
    p.stop()


@pytest.fixture
async def edge(broker, peer, tmp_path):
    # The cloud is up first, as in production: it must see the first snapshot request.
    e = Edge(str(tmp_path / "edge.db"), broker.port)
    await e.start()
    await eventually(lambda: e.link.online, "edge online")
    yield e
    await e.stop()


def errors_at(peer):
    return [r["body"] for r in peer.records_of(SITE_ID, "error")]


async def test_snapshot_then_delta_are_applied_and_drive_authorization(edge, peer):
    # An edge without lists asks for a snapshot right after connecting.
    await eventually(lambda: peer.snapshot_requests, "snapshot request on connect")
    assert peer.snapshot_requests[0]["reason"] == "no_lists"
    assert not edge.holder.authorize("AA01", "CP001", 1).accepted
    peer.push_snapshot(SITE_ID, snapshot(1))
    await eventually(lambda: edge.holder.version == 1, "snapshot applied")
    assert edge.holder.authorize("AA01", "CP001", 1).accepted
    peer.push_delta(SITE_ID, delta(1, 2, add=["BB07"], remove=["AA01"]))
    await eventually(lambda: edge.holder.version == 2, "delta applied")
    assert edge.holder.authorize("BB07", "CP001", 1).accepted
    assert not edge.holder.authorize("AA01", "CP001", 1).accepted
    assert edge.store.stored_version() == 2
    assert errors_at(peer) == []


async def test_delta_on_the_wrong_version_asks_for_a_snapshot(edge, peer):
    peer.push_snapshot(SITE_ID, snapshot(3))
    await eventually(lambda: edge.holder.version == 3, "snapshot applied")
    before = edge.holder.book
    bad_id = peer.push_delta(SITE_ID, delta(5, 6, add=["ZZ99"]))
    await eventually(lambda: any(r.get("ref_id") == bad_id for r in peer.snapshot_requests),
                     "snapshot request for the gap")
    req = [r for r in peer.snapshot_requests if r.get("ref_id") == bad_id][0]
    assert req["reason"] == "version_mismatch" and req["have_version"] == 3
    await eventually(lambda: errors_at(peer), "error record upstream")
    err = errors_at(peer)[0]
    assert err["code"] == "version_mismatch" and err["ref_id"] == bad_id
    assert edge.holder.book is before and edge.holder.version == 3
    assert edge.holder.book.token("ZZ99") is None
    # The cloud answers with a snapshot; the edge continues from it.
    peer.push_snapshot(SITE_ID, snapshot(6, uids=("ZZ99",)))
    await eventually(lambda: edge.holder.version == 6, "recovery snapshot applied")
    assert edge.holder.authorize("ZZ99", "CP001", 1).accepted


def envelope(msg_type, body, v=1, msg_id="c-bad"):
    return msgpack.packb({"v": v, "type": msg_type, "id": msg_id, "site": SITE_ID,
                          "at_s": 1_763_900_000, "body": body}, use_bin_type=True)


async def test_hostile_payloads_are_refused_with_nothing_changed(edge, peer):
    peer.push_snapshot(SITE_ID, snapshot(4))
    await eventually(lambda: edge.holder.version == 4, "snapshot applied")
    book = edge.holder.book
    lists = down_topic(SITE_ID, "lists")
    cmd = down_topic(SITE_ID, "cmd")
    peer.publish_raw(lists, b"\xc1\x93garbage")                                # not msgpack
    peer.publish_raw(lists, envelope("snapshot", snapshot(9), v=2, msg_id="c-v2"))
    peer.publish_raw(cmd, envelope("remote_start", {"request_id": "x" * 70_000}, msg_id="c-big"))
    peer.publish_raw(lists, envelope("snapshot", dict(snapshot(9), tokens=[{"uid": 5}]),
                                     msg_id="c-inv"))
    peer.publish_raw(cmd, envelope("snapshot", snapshot(9), msg_id="c-topic"))
    other_site = msgpack.unpackb(envelope("snapshot", snapshot(9), msg_id="c-site"))
    other_site["site"] = "elsewhere"
    peer.publish_raw(lists, msgpack.packb(other_site))
    peer.publish_raw(lists, envelope("snapshot", snapshot(9), msg_id="c-extra")[:-3] + b"\x00")
    await eventually(lambda: len(errors_at(peer)) == 7, "seven error records upstream")
    codes = sorted(e["code"] for e in errors_at(peer))
    assert codes == ["invalid", "malformed", "malformed", "schema_version", "too_large",
                     "wrong_site", "wrong_topic"]
    invalid = [e for e in errors_at(peer) if e["code"] == "invalid"][0]
    assert invalid["ref_id"] == "c-inv" and invalid["field"].startswith("body.tokens[0]")
    assert edge.holder.book is book and edge.holder.version == 4
    assert edge.store.stored_version() == 4
    assert edge.commands == []
    assert edge.link.online                 # the link kept running
    peer.push_delta(SITE_ID, delta(4, 5, add=["CC01"]))
    await eventually(lambda: edge.holder.version == 5, "a good delta still applies")


async def test_remote_start_reaches_on_command_and_the_reply_the_cloud(edge, peer):
    msg = codec.encode_envelope("remote_start", "c-rs1", SITE_ID, 1_763_900_000,
                                {"request_id": "rs-77", "station": "CP001", "connector": 1,
                                 "payment_ref": "pi_3Nx", "group_id": None})
    # QoS 1 may deliver a command twice: the wallbox must be started once. A copy that
    # arrives while the first runs gets no reply of its own; one that arrives later
    # gets the same reply again.
    peer.publish_raw(down_topic(SITE_ID, "cmd"), msg)
    peer.publish_raw(down_topic(SITE_ID, "cmd"), msg)
    await eventually(lambda: peer.replies, "reply")
    before = len(peer.replies)
    peer.publish_raw(down_topic(SITE_ID, "cmd"), msg)
    await eventually(lambda: len(peer.replies) == before + 1, "reply to the late copy")
    assert len(edge.commands) == 1
    command = edge.commands[0]
    assert command == {"type": "remote_start", "request_id": "rs-77", "station": "CP001",
                       "connector": 1, "payment_ref": "pi_3Nx", "group_id": None}
    for reply in peer.replies:
        assert reply["request_id"] == "rs-77" and reply["command"] == "remote_start"
        assert reply["status"] == "accepted" and reply["session_id"] == "s-demo-rs-1"


async def test_invalid_command_is_rejected_and_reported(edge, peer):
    peer.send(SITE_ID, "remote_start", {"request_id": "rs-9", "station": "CP001", "connector": 0,
                                        "payment_ref": "pi", "group_id": None}, "cmd")
    await eventually(lambda: peer.replies and errors_at(peer), "reply and error record")
    assert peer.replies[0]["status"] == "rejected" and peer.replies[0]["reason"] == "invalid"
    assert errors_at(peer)[0]["field"] == "body.connector"
    assert edge.commands == []


@pytest.mark.parametrize("outcome", ["raises", "slow", "bad_result", "bad_reason"])
async def test_a_failing_command_handler_is_answered_failed(broker, peer, tmp_path, outcome):
    async def on_command(command):
        if outcome == "raises":
            raise RuntimeError("gateway down")
        if outcome == "slow":
            await asyncio.Event().wait()
        if outcome == "bad_reason":
            return {"status": "accepted", "reason": "station went away", "session_id": None}
        return {"status": "maybe"}

    e = Edge(str(tmp_path / "edge.db"), broker.port, on_command=on_command,
             command_timeout_s=0.2)
    await e.start()
    try:
        await eventually(lambda: e.link.online, "online")
        peer.remote_stop(SITE_ID, "rq-1", "s-demo-000001")
        await eventually(lambda: peer.replies, "reply")
        reply = peer.replies[0]
        assert reply["status"] == "failed" and reply["command"] == "remote_stop"
        assert reply["reason"] == ("timeout" if outcome == "slow" else "internal_error")
        assert e.link.online
    finally:
        await e.stop()


async def test_site_limit_is_handed_over_and_expires(broker, peer, tmp_path):
    clock = Clock(1_763_900_000)
    e = Edge(str(tmp_path / "edge.db"), broker.port, clock=clock)
    await e.start()
    try:
        await eventually(lambda: e.link.online, "online")
        peer._clock = clock
        peer.site_limit(SITE_ID, "sl-1", "dso-1", 320, int(clock.now) + 600)
        await eventually(lambda: e.limits, "limit handed to the allocation")
        assert e.limits[0]["max_da"] == 320
        assert e.link.external_limit_da() == 320
        await eventually(lambda: peer.replies, "reply")
        assert peer.replies[0]["status"] == "accepted"
        clock.now += 601
        assert e.link.external_limit_da() is None
        peer.site_limit(SITE_ID, "sl-2", "dso-2", 100, int(clock.now) - 5)     # already expired
        await eventually(lambda: len(peer.replies) == 2, "second reply")
        assert peer.replies[1]["status"] == "rejected" and peer.replies[1]["reason"] == "expired"
        assert len(e.limits) == 1
    finally:
        await e.stop()


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


async def test_records_are_acked_and_leave_the_outbox(edge, peer):
    ids = [edge.enqueue_session(n, state) for n in range(20) for state in ("started", "completed")]
    await eventually(lambda: edge.outbox.count() == 0, "outbox drained by acks")
    assert set(peer.records[SITE_ID]) == set(ids)
    assert peer.duplicates == 0
    state = edge.link.state()
    assert state["online"] and state["protocol"] == "5" and state["outbox_count"] == 0
    assert state["records_sent"] == 40 and state["last_error"] is None


async def test_clean_stop_publishes_offline_and_status_is_retained(edge, peer):
    assert edge.link.publish_status([{"id": "CP001", "connected": True, "protocol": "ocpp1.6",
                                      "connectors": [{"id": 1, "status": "Available",
                                                      "error": None}]}])
    await eventually(lambda: SITE_ID in peer.status, "status")
    await eventually(lambda: peer.online.get(SITE_ID, {}).get("online") is True, "online")
    await edge.link.stop()
    await eventually(lambda: peer.online[SITE_ID]["online"] is False, "offline after stop")
    # A cloud service that connects later still sees both, retained.
    late = CloudPeer(port=peer.port, client_id="late-peer").start()
    try:
        assert await asyncio.to_thread(late.wait_for,
                                       lambda p: SITE_ID in p.online and SITE_ID in p.status)
        assert late.online[SITE_ID]["online"] is False and late.online[SITE_ID]["retained"]
        assert late.status[SITE_ID]["stations"][0]["id"] == "CP001"
    finally:
        late.stop()
    assert not edge.link.publish_telemetry({"state": "normal"})     # offline: dropped


async def test_the_whole_protocol_over_mqtt_311(broker, peer, tmp_path):
    from .downgrade_proxy import DowngradeProxy
    proxy = await DowngradeProxy(broker.port).start()
    e = Edge(str(tmp_path / "edge.db"), proxy.port)
    await e.start()
    try:
        await eventually(lambda: e.link.online, "online through a 3.1.1-only broker")
        assert e.link.state()["protocol"] == "3.1.1"
        peer.push_snapshot(SITE_ID, snapshot(2))
        await eventually(lambda: e.holder.version == 2, "snapshot over 3.1.1")
        ids = [e.enqueue_session(n, "started") for n in range(5)]
        await eventually(lambda: e.outbox.count() == 0, "records acked over 3.1.1")
        assert set(ids) <= set(peer.records[SITE_ID])
        await e.link.stop()
        await eventually(lambda: peer.online[SITE_ID]["online"] is False, "offline over 3.1.1")
    finally:
        await e.stop()
        await proxy.stop()


async def test_a_flood_of_garbage_leaves_the_link_and_the_lists_alone(edge, peer):
    import random
    rnd = random.Random(5)
    peer.push_snapshot(SITE_ID, snapshot(1))
    await eventually(lambda: edge.holder.version == 1, "snapshot applied")
    good = codec.encode_envelope("delta", "c-good", SITE_ID, 1_763_900_000, delta(1, 2, add=["DD01"]))
    # Flipped bits go into a delta on a base the edge never had: a flip may still yield
    # valid msgpack (TCP/TLS guard integrity on the wire, the protocol does not), but
    # no single flip turns base 99 into 1, so none of them may apply.
    gap = codec.encode_envelope("delta", "c-gap", SITE_ID, 1_763_900_000, delta(99, 100, add=["XX"]))
    for i in range(60):
        kind = i % 3
        if kind == 0:
            payload = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))
        elif kind == 1:
            payload = good[:rnd.randrange(1, len(good))]          # truncated
        else:
            payload = bytearray(gap)                               # one bit flipped
            payload[rnd.randrange(len(payload))] ^= 1 << rnd.randrange(8)
            payload = bytes(payload)
        topic = down_topic(SITE_ID, ("lists", "cmd", "ack")[rnd.randrange(3)])
        peer.publish_raw(topic, payload, wait=False)
    peer.publish_raw(down_topic(SITE_ID, "lists"), good)
    await eventually(lambda: edge.holder.version == 2, "the good delta after the flood")
    assert edge.holder.book.token("DD01") is not None
    assert edge.link.online and edge.link.connection.connects == 1
    assert edge.commands == []
