"""Durable charging sessions: every start and stop is on disk before a wallbox hears "ok".

A session row is written inside one transaction together with its outbox record (when
an outbox is given), so the cloud copy can never get ahead of, or lag behind, what was
acknowledged. Starts carry a ``dedup_key`` (a natural key of the transaction as the
wallbox reports it) so a start that is retransmitted after a lost answer, or reported
late after an offline period, is recorded exactly once.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from typing import Any, Callable, Iterable

from edge.store import session_records
from edge.store.db import transaction
from edge.store.open_sessions import OpenSessions

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    station TEXT NOT NULL,
    connector INTEGER NOT NULL,
    transaction_id TEXT NOT NULL,
    token TEXT,
    payment_ref TEXT,
    group_id TEXT,
    started_s INTEGER NOT NULL,
    stopped_s INTEGER,
    meter_start_wh INTEGER,            -- NULL until the first register reading
    meter_stop_wh INTEGER,
    energy_wh INTEGER,
    last_meter_wh INTEGER,             -- the start register; later ones: session_samples
    tariff TEXT,
    cost TEXT,
    stop_reason TEXT,
    state TEXT NOT NULL,
    reported_late INTEGER NOT NULL DEFAULT 0,
    refused TEXT,                      -- the authorization reason code of a refused start
    dedup_key TEXT UNIQUE,
    UNIQUE (station, transaction_id)
);
CREATE INDEX IF NOT EXISTS sessions_open ON sessions(state, station);
CREATE INDEX IF NOT EXISTS sessions_group ON sessions(group_id);
CREATE TABLE IF NOT EXISTS session_samples (
    session_id TEXT NOT NULL REFERENCES sessions(session_id),
    at_s INTEGER NOT NULL,
    energy_wh INTEGER,
    current_da TEXT
);
CREATE INDEX IF NOT EXISTS session_samples_sid ON session_samples(session_id, at_s);
-- OCPP 1.6 transaction ids are integers chosen by the server; they must never repeat,
-- not even after a restart, or a late StopTransaction could close the wrong session.
CREATE TABLE IF NOT EXISTS transaction_seq (id INTEGER PRIMARY KEY AUTOINCREMENT, at_s INTEGER);
"""

MAX_QUEUED_SAMPLES = 20000

RECORD_KEYS = (
    "session_id", "station", "connector", "transaction_id", "token", "payment_ref",
    "group_id", "started_s", "stopped_s", "meter_start_wh", "meter_stop_wh",
    "energy_wh", "tariff", "cost", "stop_reason", "state", "reported_late", "refused",
)


def ensure_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)
    cols = {r[1] for r in conn.execute("PRAGMA table_info(sessions)")}
    if "refused" not in cols:
        # a store written before refused starts were recorded
        conn.execute("ALTER TABLE sessions ADD COLUMN refused TEXT")
    session_records.ensure_schema(conn)
    # sessions_by_start (started_s, session_id) answers every query by start time; a
    # second index on started_s alone cost one more page written per start.
    conn.execute("DROP INDEX IF EXISTS sessions_started")


def time_ordered_id() -> str:
    """A session id: 32 hex digits like a random UUID, in UUIDv7's layout (48 bits of
    milliseconds since 1970, then 74 random bits), so new ids sort after older ones.

    The tables and indexes keyed by session id (sessions, session_records, the outbox's
    key index, the samples' index) then grow at their right edge and retention deletes
    from their left: a start or a pruned session dirties the pages its neighbours in
    time dirty too, instead of one random page per index (docs/retention.md).
    """
    ms = int(time.time() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 \
        | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return "%032x" % value


def _int_or_none(v: Any) -> int | None:
    return None if v is None else int(v)


def _record(row: sqlite3.Row) -> dict[str, Any]:
    rec = {k: row[k] for k in RECORD_KEYS}
    rec["tariff"] = json.loads(rec["tariff"]) if rec["tariff"] is not None else None
    rec["cost"] = json.loads(rec["cost"]) if rec["cost"] is not None else None
    rec["reported_late"] = bool(rec["reported_late"])
    return rec


class SessionStore:
    """Sessions in SQLite; ``outbox.enqueue("session", session_id, record)`` on every change."""

    def __init__(self, conn: sqlite3.Connection, outbox: Any = None,
                 clock: Callable[[], float] = time.time,
                 ids: Callable[[], str] = time_ordered_id) -> None:
        self._conn = conn
        self._outbox = outbox
        self._clock = clock
        self._ids = ids
        self._samples: list[tuple] = []
        self.flush_at = 500          # samples queued before a flush is forced
        # At most one stored sample per session per this many seconds (0: every one);
        # the service sets it from store.retention.sample_every_s (edge/store/retention.py)
        self.sample_every_s = 0
        self._kept_at: dict[str, int] = {}
        # Stops the store refused (disk full, I/O error): session_id -> the stop's
        # arguments. Never acknowledged to the wallbox, but the session has ended: it is
        # out of ``open_sessions()`` and written by ``write_held_stops()`` with its real
        # stop time and register as soon as the store takes it (docs/domain.md, section 7,
        # "When the disk fills up").
        self._held_stops: dict[str, tuple] = {}
        # The last write failed (disk full, I/O error): said once per incident here, not
        # per refused message (the gateway's wire log leaves these to the store).
        self.store_failing = False
        ensure_schema(conn)
        # Open sessions in memory, rebuilt from the store here (edge/store/open_sessions.py)
        self._open = OpenSessions()
        self._open_stale = True

    @property
    def open(self) -> OpenSessions:
        """The open sessions in memory. Rebuilt from the store at start, and again only
        after a write that joined a caller's transaction (its commit is the caller's)."""
        if self._open_stale:
            self._open_stale = False
            fresh = OpenSessions()
            held = self._held_stops
            fresh.load(_record(r) for r in self._conn.execute(
                "SELECT * FROM sessions WHERE state='started' ORDER BY started_s")
                if r["session_id"] not in held)
            fresh.version = self._open.version + 1
            self._open = fresh
        return self._open

    def _remember(self, joined: bool, change: Callable[[OpenSessions], None]) -> None:
        """Write-through after the commit; a write inside an outer transaction is read
        back from the store once that is over (it may still be rolled back)."""
        if joined:
            self._open_stale = True
        else:
            change(self.open)

    # -- writes -----------------------------------------------------------------
    def next_transaction_id(self) -> int:
        """A fresh integer transaction id (OCPP 1.6), durable across restarts."""
        with transaction(self._conn) as c:
            cur = c.execute("INSERT INTO transaction_seq(at_s) VALUES (?)", (int(self._clock()),))
            return int(cur.lastrowid)

    def start(self, station: str, connector: int, transaction_id: str | int | None,
              token: str | None, meter_start_wh: int | None, started_s: int, *,
              group_id: str | None = None, tariff: dict | None = None,
              payment_ref: str | None = None, reported_late: bool = False,
              dedup_key: str | None = None,
              refused: str | None = None) -> tuple[dict[str, Any], bool]:
        """Record a started session; returns ``(record, created)``.

        A second start with the same ``dedup_key`` or the same (station, transaction_id)
        returns the existing record and ``created`` False: nothing is written twice.
        ``transaction_id`` None allocates a new integer id (OCPP 1.6).
        ``meter_start_wh`` None (the wallbox sent no register at the start) is filled in
        by the first sample with an energy reading. ``refused`` is the reason code of a
        start the edge answered with a refusal: recorded (energy may flow all the same)
        but through no group and at no tariff.
        """
        try:
            return self._start(station, connector, transaction_id, token, meter_start_wh,
                               started_s, group_id, tariff, payment_ref, reported_late,
                               dedup_key, refused)
        except sqlite3.Error as exc:
            self._failed(exc, "a start at %s" % station)
            raise

    def _start(self, station: str, connector: int, transaction_id: str | int | None,
               token: str | None, meter_start_wh: int | None, started_s: int,
               group_id: str | None, tariff: dict | None, payment_ref: str | None,
               reported_late: bool, dedup_key: str | None,
               refused: str | None) -> tuple[dict[str, Any], bool]:
        joined = self._conn.in_transaction
        with transaction(self._conn) as c:
            existing = None
            if dedup_key is not None:
                existing = c.execute("SELECT * FROM sessions WHERE dedup_key=?",
                                     (dedup_key,)).fetchone()
            if existing is None and transaction_id is not None:
                existing = c.execute(
                    "SELECT * FROM sessions WHERE station=? AND transaction_id=?",
                    (station, str(transaction_id))).fetchone()
            if existing is not None:
                return _record(existing), False
            if transaction_id is None:
                cur = c.execute("INSERT INTO transaction_seq(at_s) VALUES (?)",
                                (int(self._clock()),))
                transaction_id = cur.lastrowid
            sid = self._ids()
            c.execute(
                "INSERT INTO sessions(session_id, station, connector, transaction_id, token,"
                " payment_ref, group_id, started_s, meter_start_wh, last_meter_wh, tariff,"
                " state, reported_late, dedup_key, refused)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,'started',?,?,?)",
                (sid, station, int(connector), str(transaction_id), token, payment_ref,
                 group_id, int(started_s), _int_or_none(meter_start_wh),
                 _int_or_none(meter_start_wh),
                 json.dumps(tariff) if tariff is not None else None,
                 1 if reported_late else 0, dedup_key, refused))
            rec = self._get(c, sid)
            self._enqueue(c, rec)
        self._written()
        self._remember(joined, lambda o: o.add(dict(rec)))    # committed: memory follows
        return rec, True

    def add_sample(self, session_id: str, at_s: int, energy_wh: int | None,
                   current_da: Iterable[int] | None = None) -> None:
        """Queue one meter sample; written by ``flush_samples()`` in one transaction.

        Samples are not acknowledged data (the stop carries the final register), so
        they are batched: one fsync per flush instead of one per sample keeps a busy
        site's event loop free (an SD card manages few fsyncs per second).
        """
        if self.sample_every_s and not self._keep_sample(session_id, int(at_s)):
            return
        cur = list(current_da) if current_da is not None else None
        self._samples.append((session_id, int(at_s),
                              int(energy_wh) if energy_wh is not None else None,
                              json.dumps(cur) if cur is not None else None))
        if len(self._samples) > MAX_QUEUED_SAMPLES:
            # the store refuses writes (disk full) and no flush is tried per sample:
            # the oldest go, memory stays bounded
            del self._samples[:len(self._samples) - MAX_QUEUED_SAMPLES]
        if len(self._samples) >= self.flush_at and not self.store_failing:
            try:
                self.flush_samples()
            except Exception:
                # the sample is queued; a busy or broken store must not turn the
                # wallbox's MeterValues into an error. The periodic flush tries again:
                # not every sample while the disk is full.
                pass

    def _keep_sample(self, session_id: str, at_s: int) -> bool:
        """Thinning: the allocation sees every sample, the card gets one a period."""
        last = self._kept_at.get(session_id)
        if last is not None and 0 <= at_s - last < self.sample_every_s:
            return False
        if last is None and len(self._kept_at) >= MAX_QUEUED_SAMPLES:
            # a session that ended without a stop reaching us: forget the oldest
            self._kept_at.pop(next(iter(self._kept_at)))
        self._kept_at[session_id] = at_s if last is None else max(last, at_s)
        return True

    def flush_samples(self) -> int:
        """Write queued samples; returns how many. Also called by stop() and samples()."""
        if not self._samples:
            return 0
        batch, self._samples = self._samples, []
        try:
            with transaction(self._conn) as c:
                firsts = self._write_samples(c, batch)
        except sqlite3.IntegrityError:
            # One bad row (e.g. its session is gone) must not block all others forever:
            # write row by row and drop what the database refuses.
            return self._write_one_by_one(batch)
        except sqlite3.Error as exc:
            self._requeue(batch)
            self._failed(exc, "meter samples, %d kept in memory" % len(self._samples))
            raise
        except Exception:
            self._requeue(batch)
            raise
        self._written()
        self._note_firsts(firsts)
        return len(batch)

    def _note_firsts(self, firsts: dict[str, int]) -> None:
        """Start registers filled in by samples, after their commit."""
        if self._conn.in_transaction:
            self._open_stale = True
            return
        for sid, wh in firsts.items():
            self.open.set_meter_start(sid, wh)

    def _failed(self, exc: BaseException, what: str) -> None:
        if not self.store_failing:
            log.warning("the store refuses writes (%s; %s): what it cannot store is not"
                        " acknowledged to the wallboxes, which send it again; check the disk"
                        " of the store", str(exc)[:120], what)
        self.store_failing = True

    def _written(self) -> None:
        if self.store_failing:
            log.info("the store takes writes again")
        self.store_failing = False

    def _write_one_by_one(self, batch: list[tuple]) -> int:
        written = 0
        for row in batch:
            try:
                with transaction(self._conn) as c:
                    firsts = self._write_samples(c, [row])
                self._note_firsts(firsts)
                written += 1
            except sqlite3.IntegrityError:
                log.warning("meter sample for session %s refused by the store; dropped", row[0])
        return written

    def _requeue(self, batch: list[tuple]) -> None:
        # Keep them for the next try, but bounded: a store that stays broken must not
        # eat the memory too.
        self._samples = (batch + self._samples)[-MAX_QUEUED_SAMPLES:]

    def _write_samples(self, c: sqlite3.Connection, batch: list[tuple]) -> dict[str, int]:
        c.executemany("INSERT INTO session_samples(session_id, at_s, energy_wh, current_da)"
                      " VALUES (?,?,?,?)", batch)
        # Only a session still without a start register is updated: a row rewritten for
        # every sample would dirty one more page per sample on the card (the last
        # register is read from the samples at the stop instead).
        firsts: dict[str, int] = {}
        for sid, _at, energy_wh, _cur in batch:
            if energy_wh is not None and sid not in firsts:
                firsts[sid] = energy_wh
        c.executemany("UPDATE sessions SET meter_start_wh=? WHERE session_id=?"
                      " AND meter_start_wh IS NULL",
                      [(wh, sid) for sid, wh in firsts.items()])
        return firsts

    def stop(self, session_id: str, stopped_s: int, meter_stop_wh: int | None,
             stop_reason: str | None, cost: dict | None = None,
             cost_fn: Callable[[dict], dict | None] | None = None) -> dict[str, Any]:
        """Complete a session (idempotent: stopping a completed session changes nothing).

        ``cost_fn(record_with_energy)`` may compute the cost inside the same transaction.
        A missing ``meter_stop_wh`` falls back to the last sampled register.
        """
        self._kept_at.pop(session_id, None)
        batch, self._samples = self._samples, []
        joined = self._conn.in_transaction
        try:
            rec, firsts = self._stop(batch, session_id, stopped_s, meter_stop_wh, stop_reason,
                                     cost, cost_fn)
        except sqlite3.Error as exc:
            self._requeue(batch)
            self._held_stops[session_id] = (stopped_s, meter_stop_wh, stop_reason, cost, cost_fn)
            self.open.remove(session_id)      # ended at the wallbox: out of the running ones
            self._failed(exc, "%d stop(s) held in memory" % len(self._held_stops))
            raise
        except Exception:
            self._requeue(batch)
            raise
        self._held_stops.pop(session_id, None)
        self._written()
        self._note_firsts(firsts)
        self._remember(joined, lambda o: o.remove(session_id))    # committed: memory follows
        return rec

    def stop_held(self, session_id: str) -> bool:
        """True while a stop of this session waits in memory for the store."""
        return session_id in self._held_stops

    def held_stops(self) -> int:
        return len(self._held_stops)

    def write_held_stops(self) -> list[dict[str, Any]]:
        """Write the stops the store refused, oldest first; returns the completed
        records. Stops at the first one the store still refuses (raises nothing)."""
        done = []
        for session_id, args in list(self._held_stops.items()):
            try:
                done.append(self.stop(session_id, *args))
            except sqlite3.Error:
                break
        return done

    def _stop(self, batch: list[tuple], session_id: str, stopped_s: int,
              meter_stop_wh: int | None, stop_reason: str | None, cost: dict | None,
              cost_fn: Callable[[dict], dict | None] | None) -> tuple[dict[str, Any], dict]:
        with transaction(self._conn) as c:
            # queued samples decide the session's start/last register: same transaction
            firsts = self._write_samples(c, batch)
            row = c.execute("SELECT * FROM sessions WHERE session_id=?",
                            (session_id,)).fetchone()
            if row is None:
                raise KeyError(session_id)
            if row["state"] == "completed":
                return _record(row), firsts
            stop_wh = meter_stop_wh
            if stop_wh is None:
                sampled = c.execute("SELECT MAX(energy_wh) FROM session_samples"
                                    " WHERE session_id=?", (session_id,)).fetchone()[0]
                known = [v for v in (row["last_meter_wh"], sampled) if v is not None]
                stop_wh = max(known) if known else None
            start_wh = row["meter_start_wh"]
            if stop_wh is None:
                stop_wh = start_wh
            if start_wh is None:
                # no register ever seen before the stop: nothing measurable was charged
                start_wh = stop_wh
            if stop_wh is None:
                stop_wh = start_wh = 0
            # A meter that was replaced or reset mid-session would give negative energy;
            # record zero rather than a credit.
            energy = max(0, int(stop_wh) - int(start_wh))
            rec = _record(row)
            rec.update(stopped_s=int(stopped_s), meter_start_wh=int(start_wh),
                       meter_stop_wh=int(stop_wh), energy_wh=energy,
                       stop_reason=stop_reason, state="completed")
            if cost is None and cost_fn is not None:
                cost = cost_fn(rec)
            rec["cost"] = cost
            c.execute("UPDATE sessions SET stopped_s=?, meter_start_wh=?, meter_stop_wh=?,"
                      " energy_wh=?, stop_reason=?, cost=?, state='completed' WHERE session_id=?",
                      (int(stopped_s), int(start_wh), int(stop_wh), energy, stop_reason,
                       json.dumps(cost) if cost is not None else None, session_id))
            self._enqueue(c, rec)
            return rec, firsts

    # -- reads ------------------------------------------------------------------
    def get(self, session_id: str) -> dict[str, Any] | None:
        return self._get(self._conn, session_id)

    def by_transaction(self, station: str, transaction_id: str | int) -> dict[str, Any] | None:
        rec = self.open.by_transaction(station, transaction_id)
        if rec is not None:
            return dict(rec)      # an open one: from memory (every MeterValues asks)
        row = self._conn.execute("SELECT * FROM sessions WHERE station=? AND transaction_id=?",
                                 (station, str(transaction_id))).fetchone()
        return _record(row) if row is not None else None

    def open_sessions(self, station: str | None = None) -> list[dict[str, Any]]:
        """Sessions running now, copies in start order, from memory (``self.open``):
        started, and no stop seen (a stop held in memory for a failing store counts as
        seen: that transaction has ended at the wallbox)."""
        return self.open.copies(station)

    def page(self, limit: int, offset: int = 0, state: str | None = None) -> list[dict[str, Any]]:
        """Sessions newest first (by start), ``limit`` of them after skipping ``offset``."""
        where, args = ("WHERE state=?", (state,)) if state is not None else ("", ())
        rows = self._conn.execute("SELECT * FROM sessions %s ORDER BY started_s DESC, session_id DESC"
                                  " LIMIT ? OFFSET ?" % where, args + (int(limit), int(offset))).fetchall()
        return [_record(r) for r in rows]

    def count(self, state: str | None = None) -> int:
        if state is None:
            return int(self._conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])
        return int(self._conn.execute("SELECT COUNT(*) FROM sessions WHERE state=?", (state,)).fetchone()[0])

    def samples(self, session_id: str) -> list[dict[str, Any]]:
        self.flush_samples()
        rows = self._conn.execute("SELECT at_s, energy_wh, current_da FROM session_samples"
                                  " WHERE session_id=? ORDER BY at_s, rowid",
                                  (session_id,)).fetchall()
        return [{"at_s": r["at_s"], "energy_wh": r["energy_wh"],
                 "current_da": json.loads(r["current_da"]) if r["current_da"] else None}
                for r in rows]

    def count_by_group(self, group_id: str) -> int:
        """Sessions recorded through a group (a group with sessions may not be deleted)."""
        row = self._conn.execute("SELECT COUNT(*) FROM sessions WHERE group_id=?",
                                 (group_id,)).fetchone()
        return int(row[0])

    def recent_tokens(self, station: str, limit: int = 50) -> list[str]:
        """Tokens that charged at a station, most recent first (local list relevance)."""
        rows = self._conn.execute(
            "SELECT token, MAX(started_s) AS last FROM sessions WHERE station=?"
            " AND token IS NOT NULL GROUP BY token ORDER BY last DESC LIMIT ?",
            (station, int(limit))).fetchall()
        return [r["token"] for r in rows]

    def records_between(self, from_s: int, to_s: int, after: tuple | None,
                        limit: int) -> session_records.Page:
        """Sessions started in ``[from_s, to_s)`` with the id of the record that last
        carried each upstream (sessions on request, edge/cloud/session_export.py)."""
        return session_records.between(self._conn, from_s, to_s, after, limit, _record)

    def _get(self, conn: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
        row = conn.execute("SELECT * FROM sessions WHERE session_id=?", (session_id,)).fetchone()
        return _record(row) if row is not None else None

    def _enqueue(self, conn: sqlite3.Connection, rec: dict[str, Any]) -> None:
        if self._outbox is not None:
            rid = self._outbox.enqueue("session", rec["session_id"], rec, conn=conn)
            session_records.note(conn, rec["session_id"], rid, int(self._clock()))
