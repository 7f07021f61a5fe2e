"""The offline promises, end to end on a real Mosquitto: a broker outage during
sessions, an edge killed with SIGKILL before its records were acknowledged, the last
will, and live records overtaking a large backlog."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.store.db import open_db
from edge.store.outbox import Outbox
from host_tools.cloud_peer import CloudPeer

from .conftest import REPO, eventually
from .edge_harness import Edge
from .samples import SITE_ID, snapshot

EDGE_PROC = Path(__file__).with_name("edge_proc.py")


@pytest.fixture
def peer(broker):
    p = CloudPeer(port=broker.port).start()
    yield p
    p.stop()


def assert_every_session_once_in_order(peer, expected_ids, sessions):
    recs = peer.records_of(SITE_ID, "session")
    assert {r["id"] for r in recs} == set(expected_ids)      # all arrived
    assert len(recs) == len(expected_ids)                    # none twice after de-dup
    seen_started = set()
    for rec in recs:                                         # first-arrival order
        sid, state = rec["key"], rec["body"]["state"]
        if state == "started":
            seen_started.add(sid)
        else:
            assert sid in seen_started, "completed before started: %s" % sid
    assert len(seen_started) == sessions


@pytest.mark.parametrize("policy,crash", [("deny", False), ("accept", True)])
async def test_broker_outage_during_sessions_loses_nothing(broker, peer, tmp_path, policy, crash):
    # crash: the broker dies with SIGKILL and may lose its unsaved state (sessions,
    # queued messages); the edge's resend timer and the outbox still deliver all.
    edge = Edge(str(tmp_path / "edge.db"), broker.port, resend_after_s=2, offline_policy=policy)
    peer.serve_snapshot[SITE_ID] = snapshot(1)
    await edge.start()
    try:
        await eventually(lambda: edge.link.online and edge.holder.version == 1, "online, lists")
        assert edge.holder.authorize("UNKNOWN", "CP001", 1).reason == "unknown_token"
        ids = []
        for n in range(0, 30):
            ids.append(edge.enqueue_session(n, "started"))
        broker.stop(kill=crash)
        await eventually(lambda: not edge.link.online, "outage noticed")
        # Sessions go on while the broker is away: they complete, new ones start.
        for n in range(0, 30):
            ids.append(edge.enqueue_session(n, "completed"))
        for n in range(30, 60):
            ids.append(edge.enqueue_session(n, "started"))
            ids.append(edge.enqueue_session(n, "completed"))
        assert edge.outbox.count() >= 90
        # Authorization goes on from the last lists while offline; unknown tokens
        # follow the site's offline policy.
        assert edge.holder.authorize("AA01", "CP001", 1).accepted
        unknown = edge.holder.authorize("UNKNOWN", "CP001", 1)
        if policy == "deny":
            assert not unknown.accepted and unknown.reason == "unknown_token"
        else:
            assert unknown.accepted and unknown.reason == "offline_unknown_accepted"
        broker.start()
        await eventually(lambda: edge.link.online, "back online")
        await eventually(lambda: edge.outbox.count() == 0, "backlog acknowledged")
        assert_every_session_once_in_order(peer, ids, 60)
    finally:
        await edge.stop()


def start_edge_proc(db, port, sessions):
    proc = subprocess.Popen([sys.executable, str(EDGE_PROC), str(db), str(port), str(sessions)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO))
    line = proc.stdout.readline()
    assert line.startswith("READY"), (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, int(line.split()[1])


async def test_sigkill_with_unacknowledged_records_then_restart(broker, tmp_path):
    db = tmp_path / "edge.db"
    peer = CloudPeer(port=broker.port, ack=False).start()    # receives, never acks
    procs = []
    try:
        proc, queued = start_edge_proc(db, broker.port, 50)
        procs.append(proc)
        assert queued == 100
        await eventually(lambda: peer.record_count(SITE_ID) == 100, "first delivery")
        await eventually(lambda: peer.online.get(SITE_ID, {}).get("online") is True, "online")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # The broker publishes the retained last will.
        await eventually(lambda: peer.online[SITE_ID]["online"] is False, "last will: offline")
        # Retained: a cloud service connecting after the crash sees the site offline.
        late = CloudPeer(port=broker.port, client_id="late-peer").start()
        try:
            assert await asyncio.to_thread(late.wait_for, lambda p: SITE_ID in p.online)
            assert late.online[SITE_ID]["online"] is False and late.online[SITE_ID]["retained"]
        finally:
            late.stop()
        # Nothing was acknowledged, so everything is still on disk.
        conn = open_db(db)
        assert Outbox(conn).count() == 100
        first_ids = set(peer.records[SITE_ID])
        peer.ack_enabled = True
        proc, queued = start_edge_proc(db, broker.port, 50)
        procs.append(proc)
        assert queued == 100                    # nothing new queued on the restart
        await eventually(lambda: Outbox(conn).count() == 0, "redelivered and acknowledged")
        # The online state told the cloud the backlog size before the drain started.
        assert peer.online[SITE_ID]["online"] is True
        assert peer.online[SITE_ID]["outbox_count"] == 100
        assert set(peer.records[SITE_ID]) == first_ids
        assert peer.duplicates >= 100           # all of them came again; de-dup by id
        assert_every_session_once_in_order(peer, first_ids, 50)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 20) == 0
        assert "STOPPED" in proc.stdout.read()
        assert peer.online[SITE_ID]["online"] is False
        conn.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        peer.stop()


async def test_live_records_overtake_a_backlog(broker, tmp_path):
    peer = CloudPeer(port=broker.port, ack=False).start()
    edge = Edge(str(tmp_path / "edge.db"), broker.port, batch_window=2)
    try:
        backlog = [edge.enqueue_session(n, "completed") for n in range(3000)]
        await edge.start()
        # The window fills with backlog batches and nothing is acknowledged yet.
        await eventually(lambda: peer.batches == 2, "first window")
        live = edge.enqueue_session(9999, "started")
        peer.ack_enabled = True
        peer.ack_all(SITE_ID)
        await eventually(lambda: live in peer.records.get(SITE_ID, {}), "live record")
        order = list(peer.records[SITE_ID])
        assert order.index(live) < len(backlog)      # arrived before the backlog's end
        await eventually(lambda: edge.outbox.count() == 0, "all acknowledged")
        assert set(peer.records[SITE_ID]) == set(backlog) | {live}
    finally:
        await edge.stop()
        peer.stop()
