"""Station status and telemetry as deltas, through a real Mosquitto to the reference
cloud peer. The edge's clock is injected: coalescing windows, heartbeats and the limit
on requested fulls are driven by advancing it, never by waiting."""
from __future__ import annotations

import asyncio

import pytest

from host_tools.cloud_peer import CloudPeer

from .conftest import eventually
from .edge_harness import Edge
from .samples import SITE_ID


class Clock:
    def __init__(self, t: float = 1_763_900_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


def station(i, status="Available", connected=True):
    return {"id": "CP%03d" % i, "connected": connected, "protocol": "ocpp1.6",
            "connectors": [{"id": 1, "status": status, "error": None}]}


def statuses(peer):
    return [b for b in peer.status_log if b["site"] == SITE_ID]


@pytest.fixture
def peer(broker):
    p = CloudPeer(port=broker.port).start()
    yield p
    p.stop()


@pytest.fixture
async def edge(broker, peer, tmp_path):
    clock = Clock()
    e = Edge(str(tmp_path / "edge.db"), broker.port, clock=clock)
    e.clock = clock
    e.link.publish_status([station(i, connected=False) for i in range(300)])
    await e.start()
    await eventually(lambda: e.link.online, "edge online")
    await eventually(lambda: statuses(peer), "full status on connect")
    yield e
    await e.stop()


async def test_a_connect_burst_becomes_a_few_coalesced_deltas(edge, peer):
    first = statuses(peer)[0]
    assert first["full"] and len(first["stations"]) == 300 and first["request_id"] is None
    # 300 stations connect within 12 s, each saying connected, Preparing, Available. The
    # link is flushed after every event (as if the drain loop woke for each).
    edge.clock.advance(60)
    for i in range(300):
        edge.clock.advance(0.04)
        for status in ("Preparing", "Available"):
            edge.link.station_changed(station(i, status))
            edge.link.flush_upstream()
        if i % 50 == 0:
            await asyncio.sleep(0)
    edge.clock.advance(5)
    edge.link.flush_upstream()
    await eventually(lambda: peer.status.get(SITE_ID, {}).get("stations")
                     and all(s["connected"] for s in peer.status[SITE_ID]["stations"]),
                     "every station connected in the cloud's view")
    deltas = statuses(peer)[1:]
    # At most one per 5 s window over 12 s of events: 4 (it was 900 full copies before).
    assert 2 <= len(deltas) <= 4, [len(d["stations"]) for d in deltas]
    assert not any(d["full"] for d in deltas)
    assert [d["seq"] for d in statuses(peer)] == list(range(1, len(deltas) + 2))
    for d in deltas:
        assert len({s["id"] for s in d["stations"]}) == len(d["stations"])
    # A station is repeated only when it changed again after its window was sent.
    assert 300 <= sum(len(d["stations"]) for d in deltas) <= 300 + len(deltas)
    assert peer.gaps == 0 and peer.status_requests == []
    assert all(s["connectors"][0]["status"] == "Available" for s in peer.status[SITE_ID]["stations"])


def sample(drawn=100, grid=200, limit=160):
    return {"state": "normal", "reason": None, "grid_da": [grid, grid, grid],
            "external_limit_da": None, "paused": [],
            "allocations": [{"station": "CP%03d" % i, "connector": 1,
                             "limit_da": limit if i == 0 else 0, "phases": 3,
                             "drawn_da": [drawn] * 3 if i == 0 else None,
                             "session_id": "s-1" if i == 0 else None} for i in range(20)]}


async def test_idle_telemetry_is_only_a_heartbeat_and_a_step_is_sent(edge, peer):
    link, clock = edge.link, edge.clock
    assert link.publish_telemetry(sample())                 # first after connect: whole
    sent = 1
    # An hour of samples every 10 s with noise inside the deadbands: only the heartbeats.
    for k in range(1, 361):
        clock.advance(10)
        if link.publish_telemetry(sample(drawn=100 + k % 9, grid=200 + k % 19)):
            sent += 1
    assert sent == 1 + 4                                    # 900 s heartbeat, 4 in an hour
    clock.advance(10)
    assert link.publish_telemetry(sample(drawn=111))        # the car: +1.1 A
    clock.advance(10)
    assert not link.publish_telemetry(sample(drawn=111))
    clock.advance(10)
    assert link.publish_telemetry(sample(drawn=111, limit=130))
    await eventually(lambda: len(peer.telemetry) == 7, "7 telemetry messages at the cloud")
    got = peer.telemetry
    assert [t["seq"] for t in got] == list(range(1, 8)) and peer.gaps == 0
    assert got[0]["full"] and len(got[0]["allocations"]) == 20
    assert all(not t["full"] and t["allocations"] == [] for t in got[1:5])      # heartbeats
    assert got[5]["allocations"] == [dict(sample(drawn=111)["allocations"][0])]
    assert got[6]["allocations"][0]["limit_da"] == 130
    view = peer.telemetry_view[SITE_ID]
    assert view["allocations"][("CP000", 1)]["limit_da"] == 130
    assert len(view["allocations"]) == 20


async def test_a_gap_makes_the_peer_ask_for_and_get_a_full_status(edge, peer, broker):
    edge.clock.advance(60)
    edge.link.station_changed(station(1, "Charging"))
    edge.link.flush_upstream()
    await eventually(lambda: len(statuses(peer)) == 2, "first delta")
    # A cloud service that starts now gets the retained full status (seq 1) but not the
    # delta (seq 2), so the next delta shows it a gap.
    late = CloudPeer(port=broker.port, client_id="late-cloud").start()
    try:
        assert await asyncio.to_thread(late.wait_for, lambda p: SITE_ID in p.status, 10)
        assert late.status[SITE_ID]["seq"] == 1
        edge.clock.advance(60)
        edge.link.station_changed(station(2, "Charging"))
        edge.link.flush_upstream()
        await eventually(lambda: late.status_requests, "the late cloud asks for a full status")
        request = late.status_requests[0]
        assert request["reason"] == "gap" and request["have_seq"] == 1 and late.gaps == 1
        edge.clock.advance(5)           # the answer, too, keeps to one status message per 5 s
        await eventually(lambda: any(b.get("request_id") == request["request_id"]
                                     for b in statuses(late)), "full status answering it")
        answer = [b for b in statuses(late) if b.get("request_id") == request["request_id"]][0]
        assert answer["full"] and answer["seq"] == 4 and len(answer["stations"]) == 300
        view = {s["id"]: s for s in late.status[SITE_ID]["stations"]}
        assert view["CP001"]["connectors"][0]["status"] == "Charging"
        assert view["CP002"]["connectors"][0]["status"] == "Charging"
        # The next delta follows on without a gap, in both clouds' views.
        edge.clock.advance(60)
        edge.link.station_changed(station(3, "Charging"))
        edge.link.flush_upstream()
        await eventually(lambda: late.status[SITE_ID]["seq"] == 5 and peer.status[SITE_ID]["seq"] == 5,
                         "delta after the full")
        assert late.gaps == 1 and len(late.status_requests) == 1 and peer.gaps == 0
    finally:
        late.stop()


async def test_changes_while_offline_go_up_as_one_full_status_on_reconnect(edge, peer, broker):
    broker.stop()
    await eventually(lambda: not edge.link.online, "edge offline")
    for i in range(10):
        edge.clock.advance(10)
        edge.link.station_changed(station(i, "Charging"))
        assert edge.link.flush_upstream() == 0
    assert not edge.link.publish_telemetry(sample())
    broker.start()
    await eventually(lambda: edge.link.online, "edge online again", 30)
    # (The peer may see it twice: queued in its session, and retained on resubscribing.)
    await eventually(lambda: peer.status[SITE_ID]["seq"] == 2, "full status after the reconnect", 30)
    again = statuses(peer)[-1]
    assert again["full"] and again["seq"] == 2 and all(b["full"] for b in statuses(peer))
    assert {s["id"] for s in again["stations"] if s["connectors"][0]["status"] == "Charging"} \
        == {"CP%03d" % i for i in range(10)}
    assert edge.link.publish_telemetry(sample())
    await eventually(lambda: peer.telemetry, "telemetry after reconnect")
    assert peer.telemetry[-1]["full"]


async def test_a_bad_status_request_is_refused_and_answers_nothing(edge, peer):
    peer.send(SITE_ID, "status_request", {"request_id": "r-1", "reason": "because"}, "cmd")
    await eventually(lambda: peer.records_of(SITE_ID, "error"), "error record")
    err = peer.records_of(SITE_ID, "error")[0]["body"]
    assert err["code"] == "invalid" and err["field"] == "body.reason"
    edge.clock.advance(60)
    edge.link.flush_upstream()
    assert edge.link.status_stream.due_at() is None and len(statuses(peer)) == 1
