"""Which user groups the edge's own records still reference.

The cloud decides the lists, but it cannot see what the edge still holds: a running
session, or a session record in the outbox it has not received yet. Removing such a
group would strip a charging car of its priority and report a session through a group
that no longer exists, so the cloud sync refuses it (docs/cloud-protocol.md,
`group_in_use`).
"""
from __future__ import annotations

import sqlite3
from typing import Iterable

import msgpack


def groups_in_use(conn: sqlite3.Connection, group_ids: Iterable[str]) -> dict[str, str]:
    """Of ``group_ids``, those referenced, each with what references it (for the error)."""
    wanted = set(group_ids)
    found: dict[str, str] = {}
    if not wanted:
        return found
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "sessions" in tables:
        for gid, sid in conn.execute("SELECT group_id, session_id FROM sessions"
                                     " WHERE state='started' AND group_id IS NOT NULL"):
            if gid in wanted and gid not in found:
                found[gid] = "running session %s" % sid
    if "outbox" in tables and len(found) < len(wanted):
        # rare (only when a delta removes groups), so a scan of the queued bodies is fine
        for (body,) in conn.execute("SELECT body FROM outbox WHERE kind='session'"):
            try:
                rec = msgpack.unpackb(body, raw=False)
            except Exception:
                continue
            gid = rec.get("group_id") if isinstance(rec, dict) else None
            if gid in wanted and gid not in found:
                found[gid] = "session %s not yet acknowledged by the cloud" % rec.get("session_id")
    return found
