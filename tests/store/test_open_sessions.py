"""Open sessions in memory (edge/store/open_sessions.py) always say what SQLite says:
written through after each commit, rebuilt when the store is opened again."""
import pytest

from edge.store.db import open_db, transaction
from edge.store.sessions import SessionStore

T = 1748844000


def from_sql(conn):
    rows = conn.execute("SELECT session_id FROM sessions WHERE state='started'"
                        " ORDER BY started_s").fetchall()
    return [r[0] for r in rows]


def ids_of(store, station=None):
    return [r["session_id"] for r in store.open_sessions(station)]


def test_memory_follows_starts_stops_and_a_reopen(tmp_path):
    conn = open_db(tmp_path / "s.db")
    store = SessionStore(conn, clock=lambda: T)
    a, _ = store.start("CP1", 1, "a", "TOK", None, T)
    b, _ = store.start("CP2", 1, "b", "TOK", 10, T + 5)
    late, _ = store.start("CP3", 1, "c", "TOK", 0, T - 100, reported_late=True)
    assert ids_of(store) == from_sql(conn) == [late["session_id"], a["session_id"], b["session_id"]]
    store.add_sample(a["session_id"], T + 10, 500)
    store.flush_samples()
    assert store.open_sessions("CP1")[0]["meter_start_wh"] == 500     # filled in memory too
    assert store.by_transaction("CP2", "b")["session_id"] == b["session_id"]
    store.stop(b["session_id"], T + 60, 900, "Local")
    assert ids_of(store) == from_sql(conn)
    assert store.by_transaction("CP2", "b")["state"] == "completed"   # from the store
    assert store.open.of_key()[("CP1", 1)]["session_id"] == a["session_id"]
    assert ("CP2", 1) not in store.open.of_key()
    conn.close()

    conn = open_db(tmp_path / "s.db")
    reopened = SessionStore(conn, clock=lambda: T)
    assert ids_of(reopened) == from_sql(conn) == [late["session_id"], a["session_id"]]
    assert reopened.open_sessions("CP1")[0]["meter_start_wh"] == 500


def test_a_start_in_a_rolled_back_outer_transaction_is_not_remembered(tmp_path):
    conn = open_db(tmp_path / "s.db")
    store = SessionStore(conn, clock=lambda: T)
    with pytest.raises(ZeroDivisionError):
        with transaction(conn):
            store.start("CP1", 1, "a", "TOK", 0, T)
            1 / 0
    assert store.open_sessions() == [] == from_sql(conn)
    with transaction(conn):
        rec, _ = store.start("CP1", 1, "a", "TOK", 0, T)
    assert ids_of(store) == from_sql(conn) == [rec["session_id"]]


def test_callers_get_copies(tmp_path):
    store = SessionStore(open_db(tmp_path / "s.db"), clock=lambda: T)
    store.start("CP1", 1, "a", "TOK", 0, T)
    store.open_sessions()[0]["state"] = "completed"
    store.by_transaction("CP1", "a")["connector"] = 9
    assert store.open_sessions()[0]["state"] == "started"
    assert store.open_sessions()[0]["connector"] == 1


def test_a_superseded_connector_keeps_its_latest_transaction(tmp_path):
    store = SessionStore(open_db(tmp_path / "s.db"), clock=lambda: T)
    old, _ = store.start("CP1", 1, "old", "TOK", 0, T)
    new, _ = store.start("CP1", 1, "new", "TOK", 0, T + 50)
    assert store.open.of_key()[("CP1", 1)]["session_id"] == new["session_id"]
    store.stop(new["session_id"], T + 60, 0, "Local")
    assert store.open.of_key()[("CP1", 1)]["session_id"] == old["session_id"]
