"""Sessions on request: the cloud asks for a period's session records again; the edge
answers from its store in parts, beside the live outbox, with the live records' ids.
Real Mosquitto, the reference cloud peer, SQLite."""
from __future__ import annotations

import asyncio

import pytest

from host_tools.cloud_peer import CloudPeer

from .conftest import eventually
from .edge_harness import Edge
from .samples import SITE_ID

PERIOD = (1_763_000_000, 1_763_100_000)


@pytest.fixture
def peer(broker):
    p = CloudPeer(port=broker.port).start()
    yield p
    p.stop()


@pytest.fixture
async def edge(broker, peer, tmp_path):
    e = Edge(str(tmp_path / "edge.db"), broker.port, with_sessions=True)
    await e.start()
    await eventually(lambda: e.link.online, "edge online")
    yield e
    await e.stop()


def _session(edge, n: int, started_s: int, stop: bool = True) -> str:
    rec, _ = edge.sessions.start("CP001", 1, "tx-%d" % n, "AA%04d" % n, 1000, started_s)
    if stop:
        edge.sessions.stop(rec["session_id"], started_s + 600, 1000 + n, "EVDisconnected")
    edge.link.notify_outbox()
    return rec["session_id"]


def _latest_record_ids(peer, session_ids):
    """The id of the record that last carried each session on the live path."""
    latest = {}
    for rec in peer.records_of(SITE_ID, "session"):
        sid = rec["body"]["session_id"]
        if sid in session_ids and (sid not in latest or rec["body"]["state"] == "completed"):
            latest[sid] = rec["id"]
    return latest


async def test_a_period_is_sent_again_once_per_record_while_live_records_flow(edge, peer):
    inside = set()
    for n in range(240):
        inside.add(_session(edge, n, PERIOD[0] + n * 300, stop=n % 10 != 0))   # some still open
    outside = {_session(edge, 1000, PERIOD[0] - 1), _session(edge, 1001, PERIOD[1])}
    await eventually(lambda: edge.outbox.count() == 0, "live records delivered", 60)
    live_ids = _latest_record_ids(peer, inside)
    assert len(live_ids) == 240
    delivered_before = peer.record_count(SITE_ID)

    live_during = []

    async def live_traffic():
        n = 2000
        while not peer.exports["ex-1"]["done"]:
            live_during.append(_session(edge, n, PERIOD[1] + n))
            n += 1
            await asyncio.sleep(0.002)

    peer.request_sessions(SITE_ID, "ex-1", PERIOD[0], PERIOD[1], max_records=25)
    await eventually(lambda: "ex-1" in peer.exports, "request registered")
    traffic = asyncio.get_running_loop().create_task(live_traffic())
    await eventually(lambda: peer.exports["ex-1"]["done"], "export complete", 60)
    await traffic
    export = peer.exports["ex-1"]

    # Every session of the period exactly once, with the id its live record had.
    assert export["repeated"] == 0 and export["total"] == 240
    assert {r["key"] for r in export["records"].values()} == inside
    assert {r["key"]: rid for rid, r in export["records"].items()} == live_ids
    assert not outside & {r["key"] for r in export["records"].values()}
    assert peer.export_known == 240                 # the cloud de-duplicates all of them
    assert sorted(export["parts"]) == list(range(1, len(export["parts"]) + 1))
    assert len(export["parts"]) >= 240 // 25
    open_ones = [r for r in export["records"].values() if r["body"]["state"] == "started"]
    assert len(open_ones) == 24
    await eventually(lambda: any(r["request_id"] == "ex-1" for r in peer.replies), "command reply")
    [reply] = [r for r in peer.replies if r["request_id"] == "ex-1"]
    assert reply["status"] == "accepted" and reply["command"] == "sessions_request"

    # The live records went on through the outbox, untouched by the export.
    await eventually(lambda: edge.outbox.count() == 0, "live records after the export", 60)
    assert peer.record_count(SITE_ID) == delivered_before + 2 * len(live_during)
    assert peer.duplicates == 0


async def test_a_wrong_request_is_refused_and_an_empty_period_answers_one_empty_part(edge, peer):
    peer.send(SITE_ID, "sessions_request", {"request_id": "ex-bad", "from_s": 10, "to_s": 5}, "cmd")
    await eventually(lambda: any(r["request_id"] == "ex-bad" for r in peer.replies), "refusal")
    [reply] = [r for r in peer.replies if r["request_id"] == "ex-bad"]
    assert reply["status"] == "rejected" and reply["reason"] == "invalid"
    peer.request_sessions(SITE_ID, "ex-empty", 5, 10)
    await eventually(lambda: peer.exports["ex-empty"]["done"], "empty export")
    assert peer.exports["ex-empty"]["total"] == 0 and peer.exports["ex-empty"]["parts"] == [1]


async def test_an_export_cut_by_a_crash_resumes_after_the_restart(broker, tmp_path):
    """SIGKILL mid-export: the request was acknowledged to the broker long before, so
    nothing redelivers it; the edge's export job resumes it at the next connect, after
    the last part the broker acknowledged, and the last part counts every record."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    proc_py = Path(__file__).with_name("edge_proc.py")
    db = tmp_path / "edge.db"
    n_sessions = 300
    procs = []

    def start():
        proc = subprocess.Popen([sys.executable, str(proc_py), str(db), str(broker.port), str(n_sessions),
                                 "store"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().startswith("READY"), proc.stderr.read()
        procs.append(proc)
        return proc

    killed_at = []

    def on_event(site, kind, body):
        # The cloud's side sees part 3 arrive: that is when the power goes.
        if kind == "sessions_export" and body["part"] == 3 and not killed_at:
            killed_at.append(body["part"])
            procs[0].send_signal(signal.SIGKILL)

    peer = CloudPeer(port=broker.port, on_event=on_event).start()
    try:
        first = start()
        await eventually(lambda: peer.online.get(SITE_ID, {}).get("online") is True, "online", 30)
        await eventually(lambda: peer.record_count(SITE_ID) >= n_sessions, "live records", 60)
        peer.request_sessions(SITE_ID, "ex-crash", 0, 2 ** 40, max_records=5)
        await eventually(lambda: killed_at, "part 3", 60)
        first.wait(10)
        export = peer.exports["ex-crash"]
        await eventually(lambda: peer.online[SITE_ID]["online"] is False, "last will", 30)
        before = len(export["records"])
        assert not export["done"] and before < n_sessions
        assert not any(r["request_id"] == "ex-crash" for r in peer.replies)

        start()                                     # the same store; the cloud asks nothing
        await eventually(lambda: export["done"], "export resumed and complete", 60)
        await eventually(lambda: any(r["request_id"] == "ex-crash" for r in peer.replies), "reply", 30)
        [reply] = [r for r in peer.replies if r["request_id"] == "ex-crash"]
        assert reply["status"] == "accepted"
        assert export["total"] == n_sessions and len(export["records"]) == n_sessions
        parts = export["parts"]
        assert sorted(set(parts)) == list(range(1, max(parts) + 1)) and max(parts) == n_sessions // 5
        # Sent again: at most what was in flight when the power went (a part the broker
        # had not acknowledged, or one whose progress was not yet written).
        assert export["repeated"] <= 2 * 5, export["repeated"]
        assert len(parts) - len(set(parts)) <= 2
        print("killed at part 3: %d of %d records before the restart, %d parts in all, %d part(s) and "
              "%d record(s) sent twice" % (before, n_sessions, len(set(parts)), len(parts) - len(set(parts)),
                                          export["repeated"]))
        # The job is gone once finished: a third start resumes nothing.
        import sqlite3
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM export_jobs").fetchone()[0] == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        peer.stop()


async def test_an_export_cut_by_a_lost_link_goes_on_at_the_reconnect(edge, peer, broker):
    for n in range(120):
        _session(edge, n, PERIOD[0] + n * 300)
    await eventually(lambda: edge.outbox.count() == 0, "live records delivered", 60)
    send = edge.link.exporter._send

    async def paced_send(*args, **kwargs):
        # Parts a little apart, so the broker goes away mid-export and not after it.
        await asyncio.sleep(0.05)
        return await send(*args, **kwargs)

    edge.link.exporter._send = paced_send
    peer.request_sessions(SITE_ID, "ex-link", PERIOD[0], PERIOD[1], max_records=5)
    await eventually(lambda: len(peer.exports["ex-link"]["parts"]) >= 3, "part 3", 30)
    broker.stop()
    await eventually(lambda: not edge.link.online, "link down", 30)
    export = peer.exports["ex-link"]
    assert not export["done"]
    broker.start()
    await eventually(lambda: export["done"], "export complete after the reconnect", 60)
    await eventually(lambda: any(r["request_id"] == "ex-link" for r in peer.replies), "reply", 30)
    [reply] = [r for r in peer.replies if r["request_id"] == "ex-link"]
    assert reply["status"] == "accepted"                       # not export_aborted
    assert export["total"] == 120 and len(export["records"]) == 120
    assert sorted(set(export["parts"])) == list(range(1, 25))
