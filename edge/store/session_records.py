"""Which upstream record last carried each session, and the sessions of a period.

The cloud may ask for the sessions of a period again (reconciliation, an export). The
answer must carry the ids the live records had, so the cloud drops what it already
holds: the outbox deletes a record once acknowledged, so the id of the latest record of
every session is noted here, in the same transaction as the outbox row
(``SessionStore`` calls ``note``). Sessions recorded before this table existed get a
stable id derived from the session id (``LEGACY_PREFIX``).
"""
from __future__ import annotations

import sqlite3
from typing import Any, Callable, Optional

_SCHEMA = """
CREATE TABLE IF NOT EXISTS session_records (
    session_id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    at_s INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_start ON sessions(started_s, session_id);
"""

LEGACY_PREFIX = "s-"


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Needs the ``sessions`` table (edge.store.sessions) to exist."""
    conn.executescript(_SCHEMA)


def note(conn: sqlite3.Connection, session_id: str, record_id: str, at_s: int) -> None:
    """The record ``record_id`` now carries the latest state of ``session_id``."""
    conn.execute("INSERT INTO session_records(session_id, record_id, at_s) VALUES (?,?,?)"
                 " ON CONFLICT(session_id) DO UPDATE SET record_id=excluded.record_id,"
                 " at_s=excluded.at_s", (session_id, record_id, int(at_s)))


def forget(conn: sqlite3.Connection, session_ids: list) -> None:
    """The sessions are gone (retention): so are their record ids."""
    if not session_ids:
        return
    try:
        conn.execute("DELETE FROM session_records WHERE session_id IN (%s)"
                     % ",".join("?" * len(session_ids)), session_ids)
    except sqlite3.OperationalError:
        pass            # a store that never had the table


class Page:
    """One page of ``between``: ``items`` as (record_id, session_id, at_s, row), and the
    position to continue after (None when the period is exhausted)."""

    __slots__ = ("items", "after")

    def __init__(self, items: list, after: Optional[tuple]) -> None:
        self.items = items
        self.after = after


def between(conn: sqlite3.Connection, from_s: int, to_s: int, after: Optional[tuple],
            limit: int, to_record: Callable[[sqlite3.Row], dict]) -> Page:
    """Sessions started in ``[from_s, to_s)``, ordered by (start, session id), at most
    ``limit`` after the position ``after`` (a (started_s, session_id) pair or None).

    Key-set paging: each page is one indexed query, so a large period is read in small
    steps between which the event loop runs, and sessions added meanwhile neither
    shift nor repeat the rest.
    """
    start = (int(from_s), "") if after is None else (int(after[0]), str(after[1]))
    rows = conn.execute(
        "SELECT s.*, r.record_id AS _record_id, r.at_s AS _record_at_s FROM sessions s"
        " LEFT JOIN session_records r ON r.session_id = s.session_id"
        " WHERE s.started_s < ? AND (s.started_s > ? OR (s.started_s = ? AND s.session_id > ?))"
        " ORDER BY s.started_s, s.session_id LIMIT ?",
        (int(to_s), start[0], start[0], start[1], int(limit))).fetchall()
    items = []
    for row in rows:
        sid = row["session_id"]
        rid = row["_record_id"]
        if rid is None:
            rid = LEGACY_PREFIX + sid
        at_s = row["_record_at_s"]
        if at_s is None:
            at_s = row["stopped_s"] if row["stopped_s"] is not None else row["started_s"]
        items.append((rid, sid, int(at_s), to_record(row)))
    last: Any = (rows[-1]["started_s"], rows[-1]["session_id"]) if len(rows) == limit else None
    return Page(items, last)
