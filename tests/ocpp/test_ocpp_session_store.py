"""SessionStore on a real SQLite file: durability, exactly-once starts, outbox atomicity."""
import pytest

from edge.store.db import open_db, transaction
from edge.store.outbox import Outbox
from edge.store.sessions import RECORD_KEYS, SessionStore

T = 1748844000


def _store(path, outbox=True):
    conn = open_db(path)
    ob = Outbox(conn) if outbox else None
    n = [0]

    def ids():
        n[0] += 1
        return "s%d" % n[0]
    return conn, ob, SessionStore(conn, outbox=ob, clock=lambda: T, ids=ids)


def test_start_stop_survive_reopen(tmp_path):
    conn, ob, store = _store(tmp_path / "a.db")
    rec, created = store.start("CP1", 1, None, "TOK", 1000, T, group_id="g",
                               tariff={"currency": "EUR", "energy_m_per_kwh": 300,
                                       "parking": None, "monthly_base_m": 0},
                               dedup_key="k1")
    assert created and rec["transaction_id"] == "1" and rec["state"] == "started"
    assert set(rec) == set(RECORD_KEYS)
    store.stop(rec["session_id"], T + 60, 2500, "Local", cost_fn=lambda r: {"total_m": r["energy_wh"]})
    conn.close()
    conn, ob, store = _store(tmp_path / "a.db")
    got = store.get("s1")
    assert got["state"] == "completed" and got["energy_wh"] == 1500
    assert got["cost"] == {"total_m": 1500} and got["tariff"]["energy_m_per_kwh"] == 300
    # transaction ids never repeat after a restart
    assert store.next_transaction_id() == 2
    assert [r.decoded_body()["state"] for r in ob.pending(10)] == ["started", "completed"]


def test_same_start_twice_is_one_session(tmp_path):
    _, ob, store = _store(tmp_path / "b.db")
    a, c1 = store.start("CP1", 1, None, "TOK", 0, T, dedup_key="CP1|1|TOK|%d|0" % T)
    b, c2 = store.start("CP1", 1, None, "TOK", 0, T, dedup_key="CP1|1|TOK|%d|0" % T)
    assert c1 and not c2 and a == b
    x, _ = store.start("CP2", 1, "tx-9", "TOK", 0, T)
    y, c3 = store.start("CP2", 1, "tx-9", "TOK", 0, T)
    assert not c3 and x == y
    assert ob.count() == 2


def test_stop_is_idempotent_and_energy_never_negative(tmp_path):
    _, ob, store = _store(tmp_path / "c.db")
    rec, _ = store.start("CP1", 1, "t1", "TOK", 5000, T)
    store.add_sample(rec["session_id"], T + 10, 5200, [10, 0, 0])
    done = store.stop(rec["session_id"], T + 20, 100, "Other")   # meter went backwards
    assert done["energy_wh"] == 0
    again = store.stop(rec["session_id"], T + 99, 9999, "Local")
    assert again == done and ob.count() == 2


def test_missing_stop_register_uses_last_sample(tmp_path):
    _, _, store = _store(tmp_path / "d.db")
    rec, _ = store.start("CP1", 1, "t1", "TOK", 100, T)
    store.add_sample(rec["session_id"], T + 10, 600)
    assert store.stop(rec["session_id"], T + 20, None, "Local")["energy_wh"] == 500


def test_failed_outbox_write_leaves_no_half_session(tmp_path):
    conn = open_db(tmp_path / "e.db")

    class BrokenOutbox:
        def enqueue(self, kind, key, body, conn=None):
            raise RuntimeError("disk full")
    store = SessionStore(conn, outbox=BrokenOutbox(), clock=lambda: T)
    with pytest.raises(RuntimeError):
        store.start("CP1", 1, "t1", "TOK", 0, T)
    assert store.open_sessions() == []
    assert not conn.in_transaction


def test_start_joins_an_outer_transaction(tmp_path):
    conn, ob, store = _store(tmp_path / "f.db")
    with pytest.raises(ZeroDivisionError):
        with transaction(conn):
            store.start("CP1", 1, "t1", "TOK", 0, T)
            1 / 0
    assert store.open_sessions() == [] and ob.count() == 0


def test_reads(tmp_path):
    _, _, store = _store(tmp_path / "g.db", outbox=False)
    store.start("CP1", 1, "a", "OLD", 0, T - 100, group_id="g1")
    store.start("CP1", 2, "b", "NEW", 0, T, group_id="g1")
    store.start("CP2", 1, "c", "OTHER", 0, T, group_id="g2")
    assert store.recent_tokens("CP1") == ["NEW", "OLD"]
    assert store.count_by_group("g1") == 2
    assert [r["transaction_id"] for r in store.open_sessions("CP1")] == ["a", "b"]
    assert store.by_transaction("CP2", "c")["token"] == "OTHER"
    assert store.by_transaction("CP2", "zzz") is None
    with pytest.raises(KeyError):
        store.stop("nope", T, 0, "Local")


def test_unknown_meter_start_filled_by_first_reading(tmp_path):
    _, ob, store = _store(tmp_path / "h.db")
    rec, _ = store.start("CP1", 1, "t1", "TOK", None, T)
    assert rec["meter_start_wh"] is None
    store.add_sample(rec["session_id"], T + 5, None, [60, 0, 0])     # current only
    store.add_sample(rec["session_id"], T + 10, 12000)
    store.add_sample(rec["session_id"], T + 20, 12400)
    assert store.stop(rec["session_id"], T + 30, 12500, "Local")["energy_wh"] == 500


def test_stop_without_any_reading_is_zero_energy(tmp_path):
    _, _, store = _store(tmp_path / "i.db")
    rec, _ = store.start("CP1", 1, "t1", "TOK", None, T)
    done = store.stop(rec["session_id"], T + 30, None, "Local")
    assert done["energy_wh"] == 0 and done["meter_start_wh"] == 0


def test_samples_are_batched_and_flushed(tmp_path):
    conn, _, store = _store(tmp_path / "j.db")
    rec, _ = store.start("CP1", 1, "t1", "TOK", 0, T)
    store.flush_at = 3
    store.add_sample(rec["session_id"], T + 1, 10)
    store.add_sample(rec["session_id"], T + 2, 20)
    other = open_db(tmp_path / "j.db")
    count = "SELECT COUNT(*) FROM session_samples"
    assert other.execute(count).fetchone()[0] == 0          # queued, not yet written
    store.add_sample(rec["session_id"], T + 3, 30)           # third one forces a flush
    assert other.execute(count).fetchone()[0] == 3
    store.add_sample(rec["session_id"], T + 4, 40)
    assert store.flush_samples() == 1 and store.flush_samples() == 0
    assert other.execute(count).fetchone()[0] == 4
    other.close()


def test_failed_stop_keeps_queued_samples(tmp_path):
    conn, _, store = _store(tmp_path / "k.db")
    rec, _ = store.start("CP1", 1, "t1", "TOK", 0, T)
    store.add_sample(rec["session_id"], T + 1, 700)
    with pytest.raises(KeyError):
        store.stop("no-such-session", T + 2, 800, "Local")   # rolls back
    done = store.stop(rec["session_id"], T + 3, None, "Local")
    assert done["energy_wh"] == 700                          # the sample was not lost


def test_a_bad_sample_row_does_not_block_the_others(tmp_path):
    conn, _, store = _store(tmp_path / "l.db")
    rec, _ = store.start("CP1", 1, "t1", "TOK", 0, T)
    store.add_sample("no-such-session", T + 1, 5)
    store.add_sample(rec["session_id"], T + 2, 50)
    assert store.flush_samples() == 1
    assert [s["energy_wh"] for s in store.samples(rec["session_id"])] == [50]
    assert store.flush_samples() == 0
