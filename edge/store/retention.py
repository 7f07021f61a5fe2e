"""Retention: the store stays bounded on a gateway that runs for years on an SD card.

What is pruned, and when (docs/retention.md has the figures for sizing a card):
- meter samples are thinned as they arrive: one per session per ``sample_every_s``
  (60 s) is stored, the first one always;
- a completed session, with its meter samples, ``sessions_days`` after it stopped,
  once the cloud has acknowledged it (no outbox record with its id is left);
- the meter samples of such a session already ``samples_days`` after it stopped
  (the session row keeps the start and stop registers, energy and cost, which is what
  billing needs; the samples are the evidence for a dispute, wanted for weeks);
- OCPP 1.6 transaction-id counter rows, all but the newest (AUTOINCREMENT keeps the
  highest id ever used in sqlite_sequence, so ids still never repeat).
Never pruned: running sessions, and anything the cloud has not acknowledged, however
old. A site without a cloud therefore keeps everything (nothing is acknowledged).

Freed pages go back to the file system with ``PRAGMA incremental_vacuum`` in small
steps; a store created before retention existed is converted once, at open, with a
full VACUUM (``ensure_layout``).

The work runs in small transactions on a thread with its own connection
(``RetentionWorker``): SQLite releases the GIL while it works, WAL readers never wait
for it, and a writer on the event loop waits at most for one small batch.
"""
from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
import time
from typing import Any, Callable

from edge.core.errors import ValidationError
from edge.store import session_records
from edge.store import outbox as outbox_mod
from edge.store import sessions as sessions_mod
from edge.store import db as db_mod
from edge.store.db import open_db, transaction

log = logging.getLogger(__name__)

DAY_S = 86400
_AUTO_VACUUM_INCREMENTAL = 2

_SCHEMA = (
    # Old completed sessions in the order they become due; a partial index stays small
    # and costs a running session nothing.
    "CREATE INDEX IF NOT EXISTS sessions_stopped ON sessions(stopped_s)"
    " WHERE state = 'completed'",
    "CREATE TABLE IF NOT EXISTS retention_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


class RetentionPolicy:
    """How long what is kept; periods in seconds (the site file speaks days).

    ``sample_every_s``: the store keeps at most one meter sample per session per this
    many seconds (0: every sample); the allocation still sees every sample.

    ``batch_rows``: rows deleted per transaction (each is one short write lock);
    ``vacuum_pages``: pages returned to the file system per step; ``free_reserve``:
    free pages kept for reuse, as a share of the pages in use.
    """

    def __init__(self, sessions_keep_s: int = 90 * DAY_S, samples_keep_s: int = 30 * DAY_S,
                 every_s: float = 3600.0, batch_rows: int = 2000, vacuum_pages: int = 1024,
                 pause_s: float = 0.02, sample_every_s: int = 60,
                 free_reserve: float = 0.1) -> None:
        if samples_keep_s > sessions_keep_s:
            raise ValueError("samples_keep_s: must not exceed sessions_keep_s (%r > %r)"
                             % (samples_keep_s, sessions_keep_s))
        self.sessions_keep_s = int(sessions_keep_s)
        self.samples_keep_s = int(samples_keep_s)
        self.every_s = float(every_s)
        self.batch_rows = int(batch_rows)
        self.vacuum_pages = int(vacuum_pages)
        self.pause_s = float(pause_s)
        self.sample_every_s = int(sample_every_s)
        self.free_reserve = float(free_reserve)

    @classmethod
    def from_dict(cls, d: Any, field: str = "store.retention") -> "RetentionPolicy":
        """The ``[store.retention]`` table of the site file; every key optional."""
        if d is None:
            d = {}
        if not isinstance(d, dict):
            raise ValidationError(field, d, "must be a table/object")
        known = ("sessions_days", "samples_days", "prune_every_min", "sample_every_s")
        for key in d:
            if key not in known:
                raise ValidationError("%s.%s" % (field, key), d[key],
                                      "unknown setting; known: %s" % ", ".join(known))
        sessions_days = _whole(d.get("sessions_days", 90), field + ".sessions_days", 1, 3650)
        samples_days = _whole(d.get("samples_days", min(30, sessions_days)),
                              field + ".samples_days", 1, 3650)
        if samples_days > sessions_days:
            raise ValidationError(field + ".samples_days", samples_days,
                                  "must not exceed sessions_days (%d): samples go with their"
                                  " session" % sessions_days)
        every_min = _whole(d.get("prune_every_min", 60), field + ".prune_every_min", 1, 1440)
        sample_every_s = _whole(d.get("sample_every_s", 60), field + ".sample_every_s", 0, 3600)
        return cls(sessions_days * DAY_S, samples_days * DAY_S, every_min * 60.0,
                   sample_every_s=sample_every_s)


def _whole(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValidationError(field, value, "must be a whole number from %d to %d" % (lo, hi))
    return value


# -- one-time conversion ------------------------------------------------------------
def ensure_layout(conn: sqlite3.Connection) -> bool:
    """Make the store return freed pages on demand and use ``db.PAGE_SIZE`` pages; True
    if it does now.

    A new, empty database just takes the settings. An existing one needs one full
    VACUUM, which rewrites the file (the page size can only change outside WAL mode):
    done only when the disk has room for a copy and no other process has the store
    open (else logged, retried at the next start; freed pages are still reused
    meanwhile).
    """
    if _layout_ok(conn):
        return True
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    if pages == 0:
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        return _layout_ok(conn)
    size = pages * conn.execute("PRAGMA page_size").fetchone()[0]
    path = _db_path(conn)
    if path is not None and not _no_tables(conn):
        free = shutil.disk_usage(os.path.dirname(path)).free
        if free < 2 * size:
            log.warning("store %s (%d MB) cannot be converted to return freed space and"
                        " write less: %d MB free, needs about %d MB; retention still"
                        " reuses freed space", path, size >> 20, free >> 20, (2 * size) >> 20)
            return False
    started = time.monotonic()
    log.info("converting the store (%d MB) once so that retention can return freed space"
             " and commits write less", size >> 20)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA page_size=%d" % db_mod.PAGE_SIZE)
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("VACUUM")
        log.info("store converted in %.1f s", time.monotonic() - started)
    except sqlite3.OperationalError as e:
        # another process holds the store (an export): the next start tries again
        log.warning("store conversion postponed to the next start: %s", e)
    finally:
        conn.execute("PRAGMA journal_mode=WAL")
    return _layout_ok(conn)


def _layout_ok(conn: sqlite3.Connection) -> bool:
    return (conn.execute("PRAGMA auto_vacuum").fetchone()[0] == _AUTO_VACUUM_INCREMENTAL
            and conn.execute("PRAGMA page_size").fetchone()[0] == db_mod.PAGE_SIZE)


def _no_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0


def _db_path(conn: sqlite3.Connection) -> str | None:
    for row in conn.execute("PRAGMA database_list").fetchall():
        if row[1] == "main" and row[2]:
            return row[2]
    return None


def ensure_schema(conn: sqlite3.Connection) -> None:
    sessions_mod.ensure_schema(conn)
    outbox_mod.ensure_schema(conn)
    with transaction(conn):
        for statement in _SCHEMA:
            conn.execute(statement)


# -- pruning ---------------------------------------------------------------------------
_ACKED = "NOT EXISTS (SELECT 1 FROM outbox o WHERE o.key = s.session_id)"


class Pruner:
    """One pruning pass in small transactions on ``conn`` (see module doc).

    ``between()`` is called after every batch: the worker sleeps there, a test may
    talk to the service there.
    """

    def __init__(self, conn: sqlite3.Connection, policy: RetentionPolicy,
                 between: Callable[[], None] = lambda: None) -> None:
        self.conn = conn
        self.policy = policy
        self.between = between
        ensure_schema(conn)

    def run(self, now_s: float) -> dict[str, int]:
        """Prune what is due at ``now_s``; returns counts of what was removed."""
        done = {"sessions": 0, "samples": 0, "tx_ids": 0, "pages_returned": 0, "batches": 0}
        self._samples(int(now_s) - self.policy.samples_keep_s, done)
        self._sessions(int(now_s) - self.policy.sessions_keep_s, done)
        self._tx_ids(done)
        self._vacuum(done)
        return done

    def _batch(self, done: dict[str, int]) -> None:
        done["batches"] += 1
        self.between()

    def _samples(self, cutoff_s: int, done: dict[str, int]) -> None:
        """Samples of acknowledged sessions stopped before the cutoff.

        Sessions are visited once, in stop order, from where the last pass ended. One
        acknowledged only after its turn keeps its samples until the session itself
        is pruned (the session pass takes them with it).
        """
        conn = self.conn
        start = self._state("samples_from_s", 0)
        while True:
            ids = conn.execute(
                "SELECT s.session_id, s.stopped_s FROM sessions s WHERE s.state='completed'"
                " AND s.stopped_s >= ? AND s.stopped_s < ? AND " + _ACKED +
                " ORDER BY s.stopped_s LIMIT 500", (start, cutoff_s)).fetchall()
            sids = [r[0] for r in ids]
            for i in range(0, len(sids), 50):
                chunk = sids[i:i + 50]
                marks = ",".join("?" * len(chunk))
                while True:
                    with transaction(conn):
                        n = conn.execute(
                            "DELETE FROM session_samples WHERE rowid IN (SELECT rowid FROM"
                            " session_samples WHERE session_id IN (%s) LIMIT ?)" % marks,
                            chunk + [self.policy.batch_rows]).rowcount
                    done["samples"] += n
                    if n:
                        self._batch(done)
                    if n < self.policy.batch_rows:
                        break
            if len(ids) < 500:
                self._set_state("samples_from_s", cutoff_s)
                return
            # next round from the last stop time seen (ties are visited again, cheaply)
            last = ids[-1][1]
            start = last if last > start else last + 1
            self._set_state("samples_from_s", start)

    def _sessions(self, cutoff_s: int, done: dict[str, int]) -> None:
        conn = self.conn
        per_batch = max(1, self.policy.batch_rows // 10)
        while True:
            with transaction(conn):
                sids = [r[0] for r in conn.execute(
                    "SELECT s.session_id FROM sessions s WHERE s.state='completed'"
                    " AND s.stopped_s < ? AND " + _ACKED + " ORDER BY s.stopped_s LIMIT ?",
                    (cutoff_s, per_batch)).fetchall()]
                if not sids:
                    return
                marks = ",".join("?" * len(sids))
                # samples left (acknowledged late, or samples_days == sessions_days)
                left = conn.execute("SELECT COUNT(*) FROM session_samples WHERE session_id"
                                    " IN (%s)" % marks, sids).fetchone()[0]
                if left > self.policy.batch_rows:
                    sids = sids[:1]
                    marks = "?"
                done["samples"] += conn.execute(
                    "DELETE FROM session_samples WHERE session_id IN (%s)" % marks, sids).rowcount
                done["sessions"] += conn.execute(
                    "DELETE FROM sessions WHERE session_id IN (%s)" % marks, sids).rowcount
                session_records.forget(conn, sids)
            self._batch(done)

    def _tx_ids(self, done: dict[str, int]) -> None:
        conn = self.conn
        while True:
            with transaction(conn):
                n = conn.execute(
                    "DELETE FROM transaction_seq WHERE id IN (SELECT id FROM transaction_seq"
                    " WHERE id < (SELECT MAX(id) FROM transaction_seq) ORDER BY id LIMIT ?)",
                    (self.policy.batch_rows,)).rowcount
            done["tx_ids"] += n
            if n == 0:
                return
            self._batch(done)

    def _vacuum(self, done: dict[str, int]) -> None:
        conn = self.conn
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != _AUTO_VACUUM_INCREMENTAL:
            return
        while True:
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            used = conn.execute("PRAGMA page_count").fetchone()[0] - free
            # Free pages up to a reserve stay in the file: the next hour's sessions
            # reuse what this pass freed. Returning them would move pages around
            # (writes) only for the file to grow again (writes); a store that shrank
            # (shorter periods, a backlog aged out) still gives the rest back.
            excess = free - int(used * self.policy.free_reserve)
            if excess <= 0:
                return
            step = min(excess, self.policy.vacuum_pages)
            conn.execute("PRAGMA incremental_vacuum(%d)" % step)
            done["pages_returned"] += step
            self._batch(done)

    def _state(self, name: str, default: int) -> int:
        row = self.conn.execute("SELECT value FROM retention_state WHERE name=?",
                                (name,)).fetchone()
        return int(row[0]) if row is not None else default

    def _set_state(self, name: str, value: int) -> None:
        with transaction(self.conn):
            self.conn.execute("INSERT OR REPLACE INTO retention_state(name, value) VALUES(?, ?)",
                              (name, int(value)))


class RetentionWorker:
    """Runs a pruning pass every ``policy.every_s`` on its own thread and connection.

    ``path`` is the store's file (an in-memory store cannot be shared; call
    ``Pruner(conn, policy).run(now)`` on it instead). ``clock`` gives UTC seconds.
    ``last`` holds the counts of the last pass; ``passes`` how many ran.
    """

    def __init__(self, path: str, policy: RetentionPolicy,
                 clock: Callable[[], float] = time.time, first_after_s: float = 60.0) -> None:
        self.path = str(path)
        self.policy = policy
        self.clock = clock
        self.first_after_s = first_after_s
        self.last: dict[str, int] | None = None
        self.passes = 0
        self.between: Callable[[], None] = lambda: None   # extra hook (tests)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_soon(self) -> None:
        """Start a pass now instead of at the next period."""
        self._wake.set()

    def _pause(self) -> None:
        self.between()
        if self._stop.is_set():
            raise _Stopped()
        # between batches the event loop's writes get the lock at once
        time.sleep(self.policy.pause_s)

    def _run(self) -> None:
        conn = None
        wait = self.first_after_s
        try:
            while not self._stop.is_set():
                self._wake.wait(wait)
                self._wake.clear()
                if self._stop.is_set():
                    return
                wait = self.policy.every_s
                try:
                    if conn is None:
                        conn = open_db(self.path)
                    self._pass(conn)
                except _Stopped:
                    return
                except Exception:
                    if not self._failed:   # once per incident, not once an hour
                        log.exception("retention pass failed; the store keeps growing"
                                      " until it works again")
                    self._failed = True
        finally:
            if conn is not None:
                conn.close()

    def _pass(self, conn: sqlite3.Connection) -> None:
        started = time.monotonic()
        done = Pruner(conn, self.policy, self._pause).run(self.clock())
        self.last = done
        self.passes += 1
        if self._failed:
            log.info("retention works again")
            self._failed = False
        if done["sessions"] or done["samples"]:
            log.info("retention: %d sessions and %d meter samples pruned, %d pages returned"
                     " (%.1f s)", done["sessions"], done["samples"], done["pages_returned"],
                     time.monotonic() - started)


class _Stopped(Exception):
    pass
