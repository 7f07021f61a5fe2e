"""The durable outbox on a real SQLite file."""
from __future__ import annotations

import logging

import pytest

from .cloud_samples import Rng
from edge.store.db import open_db, transaction
from edge.store.outbox import Outbox


def test_enqueue_pending_ack(outbox):
    ids = [outbox.enqueue("session", "s-%d" % (i % 3), {"n": i}) for i in range(7)]
    assert ids[0] == "a1b2c3d4-000001" and len(set(ids)) == 7
    recs = outbox.pending(100)
    assert [r.id for r in recs] == ids
    assert [r.decoded_body()["n"] for r in recs] == list(range(7))
    assert [r.key for r in recs[:4]] == ["s-0", "s-1", "s-2", "s-0"]
    assert outbox.count() == 7 and outbox.bytes_used() == sum(len(r.body) for r in recs)
    assert outbox.ack(ids[1:3]) == 2
    assert outbox.ack(ids[1:3]) == 0  # a second ack of the same ids is harmless
    assert [r.id for r in outbox.pending(100)] == [ids[0]] + ids[3:]
    assert outbox.count() == 5 and outbox.bytes_used() == sum(len(r.body) for r in outbox.pending(100))


def test_pending_paging(outbox):
    ids = [outbox.enqueue("session", "k", {"n": i}) for i in range(10)]
    assert [r.id for r in outbox.pending(3)] == ids[:3]
    assert [r.id for r in outbox.pending(3, after=ids[2])] == ids[3:6]
    assert [r.id for r in outbox.pending(100, after=outbox.pending(5)[-1].seq, upto=7)] == ids[5:7]
    with pytest.raises(ValueError):
        outbox.pending(3, after="zz-12")


def test_foreign_and_garbage_ids_are_ignored(outbox):
    rid = outbox.enqueue("session", "k", {})
    assert outbox.ack(["ffffffff-000001", "a1b2c3d4-", "a1b2c3d4-x1", "", None, 7, rid + "0"]) == 0
    assert outbox.count() == 1


def test_survives_reopen_in_order_with_same_ids(db_path, clock):
    conn = open_db(db_path)
    box = Outbox(conn, clock=clock, rng=Rng())
    ids = [box.enqueue("session", "s-%d" % (i % 4), {"n": i}) for i in range(20)]
    box.ack(ids[:5])
    conn.close()

    conn = open_db(db_path)
    box = Outbox(conn, clock=clock, rng=Rng(0x11111111))  # the stored instance id wins
    assert [r.id for r in box.pending(100)] == ids[5:]
    assert [r.decoded_body()["n"] for r in box.pending(100)] == list(range(5, 20))
    assert box.count() == 15
    conn.close()


def test_ids_never_reused_after_newest_record_is_acked(db_path, clock):
    conn = open_db(db_path)
    box = Outbox(conn, clock=clock, rng=Rng())
    ids = [box.enqueue("session", "k", {}) for _ in range(3)]
    box.ack(ids)
    conn.close()
    conn = open_db(db_path)
    box = Outbox(conn, clock=clock, rng=Rng())
    assert box.enqueue("session", "k", {}) not in ids
    conn.close()


def test_new_database_gets_a_new_instance(tmp_path, clock):
    a = Outbox(open_db(tmp_path / "a.db"), clock=clock, rng=Rng(1))
    b = Outbox(open_db(tmp_path / "b.db"), clock=clock)  # os.urandom
    assert a.enqueue("session", "k", {}) != b.enqueue("session", "k", {})
    assert a.instance == "00000001" and len(b.instance) == 8


def test_enqueue_joins_the_callers_transaction(conn, outbox):
    conn.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY)")
    with pytest.raises(RuntimeError):
        with transaction(conn):
            conn.execute("INSERT INTO sessions VALUES ('s-1')")
            outbox.enqueue("session", "s-1", {"state": "started"}, conn=conn)
            raise RuntimeError("wallbox vanished before commit")
    assert outbox.count() == 0
    assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    with transaction(conn):
        conn.execute("INSERT INTO sessions VALUES ('s-2')")
        rid = outbox.enqueue("session", "s-2", {"state": "started"}, conn=conn)
        assert conn.in_transaction
    assert [r.id for r in outbox.pending(10)] == [rid]


def test_enqueue_commits_alone_without_a_transaction(db_path, conn, outbox):
    rid = outbox.enqueue("error", "-", {"code": "malformed"})
    other = open_db(db_path)  # a second connection sees it: it is committed
    assert other.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1
    other.close()
    assert rid.endswith("000001")


@pytest.mark.parametrize("kind, key, body", [
    ("", "k", {}), ("x" * 33, "k", {}), (None, "k", {}),
    ("session", "", {}), ("session", 5, {}), ("session", "k" * 129, {}),
    ("session", "k", {"x": object()}), ("session", "k", {"x": "y" * 70000}),
])
def test_bad_records_refused_and_nothing_written(outbox, kind, key, body):
    with pytest.raises(ValueError):
        outbox.enqueue(kind, key, body)
    assert outbox.count() == 0


def test_size_warning_once_per_incident(conn, clock, caplog):
    box = Outbox(conn, clock=clock, rng=Rng(), warn_bytes=1000, disk_free=lambda p: 10 ** 12)
    caplog.set_level(logging.INFO, logger="edge.store.outbox")
    ids = [box.enqueue("session", "k", {"pad": "x" * 100}) for _ in range(20)]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "outbox holds" in warnings[0].getMessage()
    assert box.disk_warning
    box.ack(ids)
    assert not box.disk_warning
    assert any("back below" in r.getMessage() for r in caplog.records)


def test_low_disk_warning(conn, clock, caplog):
    free = {"bytes": 10 ** 9}
    box = Outbox(conn, clock=clock, rng=Rng(), warn_free_bytes=10 ** 8,
                 disk_free=lambda path: free["bytes"], disk_check_every_s=10)
    caplog.set_level(logging.WARNING, logger="edge.store.outbox")
    box.enqueue("session", "k", {})
    assert not caplog.records
    free["bytes"] = 5 * 10 ** 7
    box.enqueue("session", "k", {})  # within the check interval: not looked at yet
    assert not caplog.records
    clock.advance(10)
    for _ in range(5):
        box.enqueue("session", "k", {})
        clock.advance(10)
    assert len(caplog.records) == 1 and "disk of the store is filling" in caplog.records[0].getMessage()
    assert box.disk_warning


def test_memory_database_works_without_disk_checks(clock):
    box = Outbox(open_db(":memory:"), clock=clock, rng=Rng(), disk_free=lambda p: 0)
    box.enqueue("session", "k", {})
    assert box.count() == 1 and not box.disk_warning


def test_low_disk_warning_with_the_real_disk(conn, clock, caplog):
    # no injected disk_free: the real free space of the database's disk is read
    caplog.set_level(logging.WARNING, logger="edge.store.outbox")
    box = Outbox(conn, clock=clock, rng=Rng(), warn_free_bytes=10 ** 18)
    box.enqueue("session", "k", {})
    assert box.disk_warning and "disk of the store is filling" in caplog.text
