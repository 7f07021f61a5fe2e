"""Memory the edge keeps beside the store has a bound whatever the traffic
(docs/retention.md, "Memory"): fed far past its bound, each structure stays at it."""
import asyncio
import sqlite3

from edge import authorizer as authorizer_mod
from edge.core.topology import Site
from edge.event_log import EventLog
from edge.lists_holder import ListsHolder
from edge.store import sessions as sessions_mod
from edge.store.db import open_db
from edge.store.sessions import SessionStore

NOW = 1_780_000_000
SITE = {"site_id": "bounds", "timezone": "UTC0", "grid": {"max_current_a": 100},
        "charging_groups": [{"id": "g", "name": "G", "max_current_a": 100, "stations": [
            {"id": "CP16", "max_current_a": 32, "connectors": [
                {"id": 1, "phases": 3, "min_current_a": 6, "max_current_a": 16}]}]}]}


def test_samples_queued_while_the_store_refuses_writes_stay_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(sessions_mod, "MAX_QUEUED_SAMPLES", 50)
    conn = open_db(tmp_path / "edge.db")
    store = SessionStore(conn, clock=lambda: NOW)
    rec, _ = store.start("CP16", 1, None, "TOK", 0, NOW)
    store.flush_at = 10
    conn.execute("PRAGMA busy_timeout=0")
    blocker = sqlite3.connect(str(tmp_path / "edge.db"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")          # another writer holds the store
    for i in range(1000):
        store.add_sample(rec["session_id"], NOW + i, i, [10, 10, 10])
        assert len(store._samples) <= 50
    blocker.execute("ROLLBACK")
    assert store.flush_samples() == 50          # the newest were kept
    assert [s["energy_wh"] for s in store.samples(rec["session_id"])] == list(range(950, 1000))


def test_thinning_remembers_a_bounded_number_of_sessions(tmp_path, monkeypatch):
    monkeypatch.setattr(sessions_mod, "MAX_QUEUED_SAMPLES", 40)
    conn = open_db(tmp_path / "edge.db")
    store = SessionStore(conn, clock=lambda: NOW)
    store.sample_every_s = 60
    store.flush_at = 10
    recs = [store.start("CP16", 1, None, "T%d" % i, 0, NOW)[0] for i in range(200)]
    for rec in recs:                            # sessions whose stop never reaches us
        store.add_sample(rec["session_id"], NOW, 1, None)
    assert len(store._kept_at) == 40
    store.add_sample(recs[-1]["session_id"], NOW + 10, 2, None)    # still thinned
    store.flush_samples()
    assert conn.execute("SELECT COUNT(*) FROM session_samples").fetchone()[0] == 200


def test_the_event_log_keeps_its_last_events():
    log = EventLog(kept=50)
    for i in range(10_000):
        log.add(NOW + i, "status", {"station": "CP%d" % i, "connector": 1, "status": "x"})
    items = log.recent(limit=100_000)
    assert len(items) == 50 and items[0]["seq"] == 10_000 and items[-1]["seq"] == 9_951


def test_refusals_and_unanswered_online_checks_stay_bounded(monkeypatch):
    monkeypatch.setattr(authorizer_mod, "MAX_NEGATIVE", 20)
    site = Site.from_dict(SITE)
    lists = ListsHolder(site, clock=lambda: NOW)

    async def no_answer(*_a):
        return None
    auth = authorizer_mod.Authorizer(lists, ask=no_answer, online=lambda: True,
                                     clock=lambda: NOW)
    for i in range(500):
        auth.take_reply("k%d" % i, {"status": "rejected", "reason": "unknown"}, NOW)
        asyncio.run(auth.authorize("ROAM%04d" % i, "CP16", 1))
    assert len(auth._negative) == 20 and "k499" in auth._negative
    assert len(auth._unanswered) == 20


def test_open_sessions_in_memory_are_bounded_by_the_open_sessions(tmp_path):
    store = SessionStore(open_db(tmp_path / "edge.db"), clock=lambda: NOW)
    for i in range(2000):                    # 10 wallboxes, 2 connectors, churning
        rec, _ = store.start("CP%d" % (i % 10), 1 + i % 2, None, "T%d" % i, 0, NOW + i)
        if i < 1990:
            store.stop(rec["session_id"], NOW + i + 1, 10, "Local")
    open_ = store.open
    assert len(open_) == 10 == len(store.open_sessions())
    assert len(open_._by_tx) == 10 and len(open_.of_key()) == 10
    assert sum(len(v) for v in open_._by_station.values()) == 10
