"""The authorization cache: the cloud's positive answers to online checks, kept until
they expire, so a roaming driver the cloud accepted keeps charging while the link is
down.

Bounded (``max_entries``): when full, the entries that expire first go, so a flood of
short-lived answers cannot push out long-lived ones for long. Persisted in SQLite, one
row per token, written when the answer arrives and before it is used, so a restart
while offline keeps it. The entries live in memory too: a look-up costs no query.
Expired entries are dropped on load, on ``purge`` and when met. The store knows no
wire format: an entry is the neutral answer dict, kept as JSON.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any, Dict, Optional

from edge.store.db import transaction

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_cache (
    token_key TEXT PRIMARY KEY,
    expires_s INTEGER NOT NULL,
    answer TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_cache_expiry ON auth_cache(expires_s);
"""


class AuthCache:
    """``get(key, now_s)`` -> answer dict or None; ``put(key, answer)`` (answer with an
    int ``expires_s``); ``forget(key)``; ``purge(now_s)``."""

    def __init__(self, conn: sqlite3.Connection, max_entries: int = 10_000,
                 now_s: Optional[int] = None) -> None:
        if max_entries < 1:
            raise ValueError("max_entries: must be at least 1 (got %r)" % (max_entries,))
        self._conn = conn
        self.max_entries = max_entries
        conn.executescript(_SCHEMA)
        self._entries: Dict[str, dict] = {}
        for key, expires_s, text in conn.execute("SELECT token_key, expires_s, answer FROM auth_cache"):
            try:
                answer = json.loads(text)
            except ValueError:
                continue
            if isinstance(answer, dict):
                self._entries[key] = answer
        if now_s is not None:
            self.purge(now_s)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, now_s: int) -> Optional[dict]:
        answer = self._entries.get(key)
        if answer is None:
            return None
        if now_s >= answer["expires_s"]:
            self.forget(key)
            return None
        return answer

    def put(self, key: str, answer: Dict[str, Any]) -> None:
        expires_s = int(answer["expires_s"])
        with transaction(self._conn) as c:
            if key not in self._entries and len(self._entries) >= self.max_entries:
                self._evict(c, len(self._entries) - self.max_entries + 1)
            c.execute("INSERT INTO auth_cache(token_key, expires_s, answer) VALUES (?,?,?)"
                      " ON CONFLICT(token_key) DO UPDATE SET expires_s=excluded.expires_s,"
                      " answer=excluded.answer", (key, expires_s, json.dumps(answer)))
        self._entries[key] = dict(answer)

    def _evict(self, c: sqlite3.Connection, n: int) -> None:
        rows = c.execute("SELECT token_key FROM auth_cache ORDER BY expires_s LIMIT ?", (n,)).fetchall()
        for (key,) in rows:
            c.execute("DELETE FROM auth_cache WHERE token_key=?", (key,))
            self._entries.pop(key, None)

    def forget(self, key: str) -> None:
        if self._entries.pop(key, None) is not None:
            with transaction(self._conn) as c:
                c.execute("DELETE FROM auth_cache WHERE token_key=?", (key,))

    def purge(self, now_s: int) -> int:
        """Drop every expired entry; returns how many."""
        gone = [k for k, a in self._entries.items() if now_s >= a["expires_s"]]
        if gone:
            with transaction(self._conn) as c:
                c.execute("DELETE FROM auth_cache WHERE expires_s <= ?", (int(now_s),))
            for key in gone:
                self._entries.pop(key, None)
        return len(gone)
