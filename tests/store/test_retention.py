"""Retention on a real SQLite file: what is pruned, what is never pruned, space returned."""
import sqlite3

import pytest

from edge.config import from_dict
from edge.core.errors import ValidationError
from edge.store.db import PAGE_SIZE, open_db
from edge.store.outbox import Outbox
from edge.store.retention import DAY_S, Pruner, RetentionPolicy, RetentionWorker
from edge.store.sessions import SessionStore

NOW = 1_780_000_000


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def _store(path):
    conn = open_db(path)
    clock = Clock(NOW)
    n = [0]

    def ids():
        n[0] += 1
        return "s%05d" % n[0]
    ob = Outbox(conn, clock=clock)
    return conn, ob, SessionStore(conn, outbox=ob, clock=clock, ids=ids), clock


def _session(store, clock, station, stopped_days_ago, samples=3, stop=True, tx=None):
    start = NOW - int(stopped_days_ago * DAY_S) - 3600
    clock.t = start
    rec, _ = store.start(station, 1, tx, "TOK", 1000, start)
    for i in range(samples):
        store.add_sample(rec["session_id"], start + 10 * (i + 1), 1000 + 10 * i, [60, 60, 60])
    if stop:
        store.stop(rec["session_id"], start + 3600, 5000, "Local")
    else:
        store.flush_samples()
    clock.t = NOW
    return rec["session_id"]


def _ack(ob, keep=()):
    """The cloud acknowledges every queued record except those of sessions in ``keep``."""
    ob.ack([r.id for r in ob.pending(100000) if r.key not in keep])


def test_prunes_only_acknowledged_sessions_older_than_the_period(tmp_path):
    conn, ob, store, clock = _store(tmp_path / "a.db")
    old_acked = _session(store, clock, "CP1", 120)
    old_unacked = _session(store, clock, "CP2", 400)
    old_running = _session(store, clock, "CP3", 200, stop=False)
    mid_acked = _session(store, clock, "CP4", 45)          # session kept, samples gone
    new_acked = _session(store, clock, "CP5", 10)          # everything kept
    edge_acked = _session(store, clock, "CP6", 89.9)       # just inside the period
    _ack(ob, keep={old_unacked})

    done = Pruner(conn, RetentionPolicy()).run(NOW)

    assert store.get(old_acked) is None and store.samples(old_acked) == []
    for sid in (old_unacked, old_running, mid_acked, new_acked, edge_acked):
        assert store.get(sid) is not None, sid
    assert len(store.samples(old_unacked)) == 3          # unacknowledged: untouched
    assert len(store.samples(old_running)) == 3          # running: untouched
    assert store.samples(mid_acked) == []                # past samples_days (30)
    assert store.samples(edge_acked) == []
    assert len(store.samples(new_acked)) == 3
    assert done["sessions"] == 1 and done["samples"] == 3 * 3
    # the unacknowledged record is still queued for the cloud, whole
    assert [(r.key, r.decoded_body()["state"]) for r in ob.pending(10)] == [
        (old_unacked, "started"), (old_unacked, "completed")]
    # once acknowledged, the next pass takes it (its samples with it)
    _ack(ob)
    done = Pruner(conn, RetentionPolicy()).run(NOW)
    assert store.get(old_unacked) is None and done["sessions"] == 1 and done["samples"] == 3


def test_a_pruned_store_answers_for_what_it_keeps(tmp_path):
    conn, ob, store, clock = _store(tmp_path / "b.db")
    kept = [_session(store, clock, "CP%d" % i, 5 + i) for i in range(5)]
    gone = [_session(store, clock, "CP%d" % i, 100 + i) for i in range(5)]
    before = {sid: (store.get(sid), store.samples(sid)) for sid in kept}
    _ack(ob)
    Pruner(conn, RetentionPolicy()).run(NOW)
    conn.close()

    conn, ob, store, clock = _store(tmp_path / "b.db")
    for sid in kept:
        rec, samples = before[sid]
        assert store.get(sid) == rec and store.samples(sid) == samples
        assert store.by_transaction(rec["station"], rec["transaction_id"]) == rec
    assert all(store.get(sid) is None for sid in gone)
    rows = conn.execute("SELECT session_id FROM sessions ORDER BY stopped_s DESC").fetchall()
    assert sorted(r[0] for r in rows) == sorted(kept)
    # the cloud's re-request of a period that spans pruned and kept sessions: every kept
    # one once, with the id of the record that carried it (the cloud de-duplicates)
    page = store.records_between(NOW - 400 * DAY_S, NOW + 1, None, 100)
    assert page.after is None
    assert sorted(sid for _, sid, _, _ in page.items) == sorted(kept)
    assert all(rec == before[sid][0] for _, sid, _, rec in page.items)
    assert all(not rid.startswith("s-") for rid, _, _, _ in page.items)
    assert conn.execute("SELECT COUNT(*) FROM session_records").fetchone()[0] == len(kept)
    # 1.6 transaction ids still never repeat: the counter rows went, the highest id stays
    assert conn.execute("SELECT COUNT(*) FROM transaction_seq").fetchone()[0] == 1
    assert store.next_transaction_id() == 11


def test_store_grown_far_past_its_period_shrinks_back(tmp_path):
    path = tmp_path / "big.db"
    conn, ob, store, clock = _store(path)
    conn.execute("PRAGMA synchronous=OFF")                  # filling fast; not under test
    for day in range(200):
        _session(store, clock, "CP1", 200 - day, samples=60)
    _ack(ob)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    grown = path.stat().st_size
    policy = RetentionPolicy(sessions_keep_s=20 * DAY_S, samples_keep_s=10 * DAY_S,
                             batch_rows=100, vacuum_pages=16)
    done = Pruner(conn, policy).run(NOW)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert done["batches"] > 10                             # in many small steps
    assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 20
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    used = conn.execute("PRAGMA page_count").fetchone()[0] - free
    assert free <= used * policy.free_reserve             # a reserve kept for reuse
    # the expected size: a fresh copy of exactly what is kept
    conn.execute("VACUUM INTO ?", (str(tmp_path / "copy.db"),))
    expected = (tmp_path / "copy.db").stat().st_size
    shrunk = path.stat().st_size
    assert shrunk < grown / 4
    assert shrunk <= expected * 1.2 + 16 * 4096, (grown, shrunk, expected)


def test_an_old_store_is_converted_once_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(str(path), isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE keep_me (x TEXT)")
    old.execute("BEGIN")
    old.executemany("INSERT INTO keep_me VALUES (?)", [("row %d" % i,) for i in range(500)])
    old.execute("COMMIT")
    assert old.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    assert old.execute("PRAGMA page_size").fetchone()[0] == 4096
    old.close()
    conn = open_db(path)
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2       # incremental
    assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT COUNT(*) FROM keep_me").fetchone()[0] == 500


def test_a_store_held_open_elsewhere_is_converted_at_a_later_start(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(str(path), isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE keep_me (x TEXT)")
    old.execute("INSERT INTO keep_me VALUES ('a')")
    reader = sqlite3.connect(str(path), isolation_level=None)   # e.g. an export running
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM keep_me").fetchall()
    conn = open_db(path)            # cannot convert now, still opens and works
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    conn.execute("INSERT INTO keep_me VALUES ('b')")
    reader.execute("COMMIT")
    reader.close()
    old.close()
    conn.close()
    conn = open_db(path)
    assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    assert [r[0] for r in conn.execute("SELECT x FROM keep_me ORDER BY x")] == ["a", "b"]


def test_worker_runs_passes_on_its_own_connection(tmp_path):
    path = tmp_path / "w.db"
    conn, ob, store, clock = _store(path)
    sid = _session(store, clock, "CP1", 100)
    _ack(ob)
    worker = RetentionWorker(path, RetentionPolicy(pause_s=0), clock=clock, first_after_s=3600)
    worker.start()
    try:
        worker.run_soon()
        for _ in range(1000):
            if worker.passes:
                break
            import time
            time.sleep(0.01)
    finally:
        worker.stop()
    assert worker.passes >= 1 and worker.last["sessions"] == 1
    assert store.get(sid) is None


_SITE = {"site_id": "s", "timezone": "UTC0", "grid": {"max_current_a": 63},
         "charging_groups": [{"id": "g", "name": "G", "stations": [
             {"id": "CP1", "connectors": [{"id": 1, "phases": 3, "wiring": "L1L2L3",
                                           "max_current_a": 16}]}]}]}


def test_site_file_defaults_and_settings():
    cfg = from_dict({"site": _SITE})
    assert cfg.retention.sessions_keep_s == 90 * DAY_S
    assert cfg.retention.samples_keep_s == 30 * DAY_S
    assert cfg.retention.every_s == 3600
    cfg = from_dict({"site": _SITE, "store": {"retention": {
        "sessions_days": 400, "samples_days": 60, "prune_every_min": 10}}})
    assert (cfg.retention.sessions_keep_s, cfg.retention.samples_keep_s,
            cfg.retention.every_s) == (400 * DAY_S, 60 * DAY_S, 600)
    # a short session period takes the samples period down with it
    cfg = from_dict({"site": _SITE, "store": {"retention": {"sessions_days": 7}}})
    assert cfg.retention.samples_keep_s == 7 * DAY_S


@pytest.mark.parametrize("retention,field", [
    ({"sessions_days": 0}, "store.retention.sessions_days"),
    ({"sessions_days": "90"}, "store.retention.sessions_days"),
    ({"sessions_days": True}, "store.retention.sessions_days"),
    ({"samples_days": 91}, "store.retention.samples_days"),
    ({"samples_days": 1.5}, "store.retention.samples_days"),
    ({"prune_every_min": 0}, "store.retention.prune_every_min"),
    ({"keep_forever": True}, "store.retention.keep_forever"),
    ([1], "store.retention"),
])
def test_site_file_errors_name_the_field(retention, field):
    with pytest.raises(ValidationError) as exc:
        from_dict({"site": _SITE, "store": {"retention": retention}})
    assert exc.value.field == field


def test_samples_are_thinned_as_they_arrive(tmp_path):
    conn, ob, store, clock = _store(tmp_path / "t.db")
    store.sample_every_s = 60
    rec, _ = store.start("CP1", 1, None, "TOK", None, NOW)
    for i in range(31):                                   # every 10 s for 5 minutes
        store.add_sample(rec["session_id"], NOW + 10 * i, 1000 + i, [60, 60, 60])
    store.add_sample(rec["session_id"], NOW + 15, 999, None)   # late and out of order
    kept = store.samples(rec["session_id"])
    assert [s["at_s"] - NOW for s in kept] == [0, 15, 60, 120, 180, 240, 300]
    done = store.stop(rec["session_id"], NOW + 305, None, "Local")
    # the first sample gave the start register, the last stored one the stop register
    assert (done["meter_start_wh"], done["meter_stop_wh"]) == (1000, 1030)
    other, _ = store.start("CP2", 1, None, "TOK", 0, NOW)
    store.add_sample(other["session_id"], NOW + 1, 5)
    assert len(store.samples(other["session_id"])) == 1   # every session has its own clock


def test_sample_thinning_in_the_site_file():
    assert from_dict({"site": _SITE}).retention.sample_every_s == 60
    cfg = from_dict({"site": _SITE, "store": {"retention": {"sample_every_s": 0}}})
    assert cfg.retention.sample_every_s == 0
    with pytest.raises(ValidationError) as exc:
        from_dict({"site": _SITE, "store": {"retention": {"sample_every_s": 3601}}})
    assert exc.value.field == "store.retention.sample_every_s"


def _steady_days(path, reserve):
    """100 days of sessions, then 10 days of one new session and one pruned a day;
    returns (pages returned to the file system in those 10 days, file growth in pages)."""
    conn, ob, store, clock = _store(path)
    for day in range(100):
        _session(store, clock, "CP1", 100 - day, samples=200)
    _ack(ob)
    policy = RetentionPolicy(sessions_keep_s=100 * DAY_S, samples_keep_s=100 * DAY_S,
                             free_reserve=reserve)
    Pruner(conn, policy).run(NOW)            # the outbox's freed pages, once
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    returned = 0
    for day in range(1, 11):
        _session(store, clock, "CP1", -day + 0.5, samples=200)
        _ack(ob)
        done = Pruner(conn, policy).run(NOW + day * DAY_S)
        assert done["sessions"] == 1
        returned += done["pages_returned"]
    return returned, conn.execute("PRAGMA page_count").fetchone()[0] - pages


def test_steady_passes_keep_freed_pages_for_the_next_sessions(tmp_path):
    returned, grown = _steady_days(tmp_path / "reserve.db", 0.1)
    returned_all, _ = _steady_days(tmp_path / "none.db", 0.0)
    # without a reserve every pass moves pages out and the next sessions grow the file
    # again; with it the freed pages are reused in place
    assert returned_all > 300
    assert returned == 0 and grown <= 0
