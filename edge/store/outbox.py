"""The durable outbox: every upstream record is committed here before it is published.

A record leaves the table only when the cloud acknowledges its id, so a crash, a power
cut or a long offline period loses nothing; after a restart the unacknowledged records
are sent again in their original order. Record ids are ``<instance>-<seq>``: the
instance is random hex chosen when the table is first created (a wiped and recreated
database cannot reuse ids the cloud has already seen) and ``seq`` comes from an
AUTOINCREMENT column, which SQLite never reuses even after the newest row is deleted.

Bodies are stored packed (msgpack), so a batch for the cloud is built by concatenation.
There is no size cap: records queue until the disk is full. A WARNING is logged once
when the outbox grows past ``warn_bytes`` or the disk's free space falls below
``warn_free_bytes``, and once more when the condition clears.
"""
from __future__ import annotations

import binascii
import logging
import os
import shutil
import sqlite3
import time
from typing import Any, Callable, Iterable, List, Optional, Union

import msgpack

from edge.store.db import transaction

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
_ACK_CHUNK = 500

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS outbox (
           seq INTEGER PRIMARY KEY AUTOINCREMENT,
           kind TEXT NOT NULL,
           key TEXT NOT NULL,
           at_s INTEGER NOT NULL,
           body BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS outbox_by_key ON outbox(key, seq)",
    "CREATE TABLE IF NOT EXISTS outbox_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class Record:
    """One queued upstream record; ``body`` is the packed msgpack body."""

    __slots__ = ("seq", "id", "kind", "key", "at_s", "body")

    def __init__(self, seq: int, id: str, kind: str, key: str, at_s: int, body: bytes) -> None:
        self.seq = seq
        self.id = id
        self.kind = kind
        self.key = key
        self.at_s = at_s
        self.body = body

    def decoded_body(self) -> Any:
        return msgpack.unpackb(self.body, raw=False)

    def __repr__(self) -> str:
        return "Record(%r, kind=%r, key=%r)" % (self.id, self.kind, self.key)


def ensure_schema(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        for statement in _SCHEMA:
            conn.execute(statement)


class Outbox:
    """Durable queue of upstream records (see module doc).

    ``clock`` gives UTC seconds (record ``at_s``); ``rng(n)`` gives n random bytes for
    the instance id (injected by tests); ``disk_free(path)`` gives free bytes on the
    database's disk (``shutil.disk_usage`` by default).
    """

    def __init__(self, conn: sqlite3.Connection, *, clock: Callable[[], float] = time.time,
                 rng: Callable[[int], bytes] = os.urandom,
                 warn_bytes: int = 512 * 1024 * 1024,
                 warn_free_bytes: int = 200 * 1024 * 1024,
                 disk_free: Optional[Callable[[str], int]] = None,
                 disk_check_every_s: float = 30.0) -> None:
        self._conn = conn
        self._clock = clock
        self.warn_bytes = warn_bytes
        self.warn_free_bytes = warn_free_bytes
        self._disk_free = disk_free or (lambda path: shutil.disk_usage(path).free)
        self._disk_check_every_s = disk_check_every_s
        self._last_disk_check = None  # type: Optional[float]
        self._warned_bytes = False
        self._warned_disk = False
        ensure_schema(conn)
        self.instance = self._instance_id(rng)
        self._prefix = self.instance + "-"
        row = conn.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM outbox").fetchone()
        self._count = int(row[0])
        self._bytes = int(row[1])
        self._db_dir = self._database_dir()

    # -- ids ------------------------------------------------------------------------
    def _instance_id(self, rng: Callable[[int], bytes]) -> str:
        conn = self._conn
        with transaction(conn):
            row = conn.execute("SELECT value FROM outbox_meta WHERE name='instance'").fetchone()
            if row is not None:
                return str(row[0])
            instance = binascii.hexlify(rng(4)).decode("ascii")
            conn.execute("INSERT INTO outbox_meta(name, value) VALUES('instance', ?)", (instance,))
            return instance

    def record_id(self, seq: int) -> str:
        return "%s%06d" % (self._prefix, seq)

    def seq_of(self, record_id: str) -> Optional[int]:
        """The sequence number of one of this outbox's ids, else None."""
        if not isinstance(record_id, str) or not record_id.startswith(self._prefix):
            return None
        digits = record_id[len(self._prefix):]
        if not digits.isdigit() or len(digits) > 18:
            return None
        return int(digits)

    # -- writing --------------------------------------------------------------------
    def enqueue(self, kind: str, key: str, body: Any, conn: Optional[sqlite3.Connection] = None) -> str:
        """Queue one record and return its id.

        With ``conn`` in an open transaction the row is part of the caller's
        transaction (a session row and its record commit together); otherwise the
        record is committed on its own before this returns.
        """
        if not isinstance(kind, str) or not 0 < len(kind) <= 32:
            raise ValueError("outbox kind: must be a text of 1 to 32 characters (got %r)" % (kind,))
        if not isinstance(key, str) or not 0 < len(key) <= 128:
            raise ValueError("outbox key: must be a text of 1 to 128 characters (got %r)" % (key,))
        packed = _pack_body(body)
        db = conn if conn is not None else self._conn
        at_s = int(self._clock())
        with transaction(db):
            cur = db.execute("INSERT INTO outbox(kind, key, at_s, body) VALUES(?, ?, ?, ?)",
                             (kind, key, at_s, packed))
            seq = cur.lastrowid
        # Counted before the caller's commit: if that transaction rolls back the count
        # is high until the next reopen, which only makes the disk warning early.
        self._count += 1
        self._bytes += len(packed)
        self._check_space()
        return self.record_id(seq)

    def ack(self, record_ids: Iterable[str]) -> int:
        """Delete acknowledged records; returns how many were removed.

        Ids that are unknown, already acknowledged or from another instance are
        ignored: the cloud may acknowledge a duplicate twice.
        """
        seqs = sorted({s for s in (self.seq_of(r) for r in record_ids) if s is not None})
        if not seqs:
            return 0
        removed = 0
        freed = 0
        conn = self._conn
        with transaction(conn):
            for i in range(0, len(seqs), _ACK_CHUNK):
                chunk = seqs[i:i + _ACK_CHUNK]
                marks = ",".join("?" * len(chunk))
                row = conn.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM outbox "
                                   "WHERE seq IN (%s)" % marks, chunk).fetchone()
                conn.execute("DELETE FROM outbox WHERE seq IN (%s)" % marks, chunk)
                removed += int(row[0])
                freed += int(row[1])
        self._count -= removed
        self._bytes -= freed
        self._check_space()
        return removed

    # -- reading --------------------------------------------------------------------
    def pending(self, limit: int, after: Union[None, int, str] = None,
                upto: Optional[int] = None) -> List[Record]:
        """Up to ``limit`` unacknowledged records in insertion order.

        ``after`` (a seq or a record id) skips records up to and including it; ``upto``
        (a seq) stops after that record.
        """
        after_seq = self._to_seq(after)
        if upto is None:
            rows = self._conn.execute(
                "SELECT seq, kind, key, at_s, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, int(limit))).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT seq, kind, key, at_s, body FROM outbox WHERE seq > ? AND seq <= ? "
                "ORDER BY seq LIMIT ?", (after_seq, int(upto), int(limit))).fetchall()
        return [Record(r[0], self.record_id(r[0]), r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def has_pending_key(self, key: str, after: int, upto: int) -> bool:
        """Whether a record with ``key`` and ``after < seq <= upto`` is still queued."""
        row = self._conn.execute("SELECT 1 FROM outbox WHERE key = ? AND seq > ? AND seq <= ? LIMIT 1",
                                 (key, after, upto)).fetchone()
        return row is not None

    @property
    def in_transaction(self) -> bool:
        """True while this outbox's connection has an open transaction: its rows may
        still roll back (and a rolled-back seq is handed out again), so nothing read
        now may be sent."""
        return self._conn.in_transaction

    def last_seq(self) -> int:
        row = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()
        return int(row[0])

    def count(self) -> int:
        # Queried, not the cached figure: a caller's rolled-back transaction must not
        # make the count drift.
        row = self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
        self._count = int(row[0])
        return self._count

    def bytes_used(self) -> int:
        """Bytes of queued record bodies (the database file is somewhat larger)."""
        return self._bytes

    def _to_seq(self, after: Union[None, int, str]) -> int:
        if after is None:
            return 0
        if isinstance(after, int) and not isinstance(after, bool):
            return after
        seq = self.seq_of(after) if isinstance(after, str) else None
        if seq is None:
            raise ValueError("outbox after: not a seq or a record id of this outbox (got %r)" % (after,))
        return seq

    # -- disk-fill warning -------------------------------------------------------------
    def _database_dir(self) -> Optional[str]:
        for row in self._conn.execute("PRAGMA database_list").fetchall():
            if row[1] == "main" and row[2]:
                return os.path.dirname(os.path.abspath(row[2]))
        return None

    def _check_space(self) -> None:
        over = self._bytes > self.warn_bytes
        if over and not self._warned_bytes:
            log.warning("outbox holds %d records, %d bytes (warning threshold %d bytes): "
                        "the cloud has not acknowledged them", self._count, self._bytes, self.warn_bytes)
        elif not over and self._warned_bytes:
            log.info("outbox back below its size warning threshold (%d bytes)", self._bytes)
        self._warned_bytes = over
        if self._db_dir is None:
            return
        now = self._clock()
        if self._last_disk_check is not None and now - self._last_disk_check < self._disk_check_every_s:
            return
        self._last_disk_check = now
        try:
            free = self._disk_free(self._db_dir)
        except OSError as exc:
            log.debug("cannot read free disk space of %s: %s", self._db_dir, exc)
            return
        low = free < self.warn_free_bytes
        if low and not self._warned_disk:
            log.warning("disk of the store is filling: %d bytes free (warning below %d); "
                        "outbox holds %d records", free, self.warn_free_bytes, self._count)
        elif not low and self._warned_disk:
            log.info("disk of the store has %d bytes free again", free)
        self._warned_disk = low

    @property
    def disk_warning(self) -> bool:
        """True while the size or free-space warning is active."""
        return self._warned_bytes or self._warned_disk


def _pack_body(body: Any) -> bytes:
    try:
        packed = msgpack.packb(body, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError("outbox body: not encodable as msgpack (%s)" % exc) from None
    if len(packed) > MAX_BODY_BYTES:
        raise ValueError("outbox body: %d bytes packed, the limit is %d" % (len(packed), MAX_BODY_BYTES))
    return packed
