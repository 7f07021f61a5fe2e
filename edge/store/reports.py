"""Read-only queries over the store for operators: recorded sessions, the groups' change history.

They run beside the service (the store opened with ``db.open_readonly``) and write
nothing, not even the schema: a store the service has not created tables in yet
simply has no rows.
"""
from __future__ import annotations

import sqlite3
from typing import Any

from edge.store.lists import FORM_BODY, StoredListsError, _decode
from edge.store.sessions import _record


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


def sessions(conn: sqlite3.Connection, since_s: int | None = None, until_s: int | None = None,
             station: str | None = None, group: str | None = None) -> list[dict[str, Any]]:
    """Session records (the shape sent upstream) started in [since_s, until_s), oldest first."""
    if not _has_table(conn, "sessions"):
        return []
    where, args = [], []
    for clause, value in (("started_s >= ?", since_s), ("started_s < ?", until_s),
                          ("station = ?", station), ("group_id = ?", group)):
        if value is not None:
            where.append(clause)
            args.append(value)
    sql = "SELECT * FROM sessions" + (" WHERE " + " AND ".join(where) if where else "") + \
        " ORDER BY started_s, session_id"
    return [_record(row) for row in conn.execute(sql, args)]


def history(conn: sqlite3.Connection, group: str | None = None, since_s: int | None = None) -> tuple[list[dict], int]:
    """(the groups' change history entries oldest first, how many stored entries were unreadable)."""
    if not _has_table(conn, "group_history"):
        return [], 0
    out, broken = [], 0
    for seq, blob in conn.execute("SELECT seq, entry FROM group_history ORDER BY seq"):
        try:
            entry = _decode(FORM_BODY, blob, "stored history entry %d" % seq)
        except StoredListsError:
            broken += 1
            continue
        if group is not None and entry.get("group_id") != group:
            continue
        if since_s is not None and (entry.get("at_s") or 0) < since_s:
            continue
        out.append(entry)
    return out, broken
