"""The applied cloud lists (and the external site limit), persisted so they survive restarts.

Storage is a base snapshot plus the deltas applied since, each kept as the validated
msgpack blob it arrived in: writing a 100,000-token snapshot is one row, and a delta is
one small row, so neither has to re-encode the whole book. Loading replays the deltas
on the base through the domain core, which validates everything again (the site
configuration may have changed since). ``compact(book)`` folds the deltas into a new
base; ``load_book`` does that by itself when many deltas have piled up.
"""
from __future__ import annotations

import logging
import sqlite3
from typing import Any, List, Optional, Sequence, Tuple

from edge.cloud import codec
from edge.core.errors import ValidationError
from edge.store.db import transaction

log = logging.getLogger(__name__)

FORM_ENVELOPE = "envelope"   # blob is a whole protocol envelope; the lists are its body
FORM_BODY = "body"           # blob is the snapshot/delta map itself

_DELTA_LISTS = ("groups_upsert", "groups_remove", "drivers_upsert", "drivers_remove",
                "tokens_upsert", "tokens_remove")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS lists_base (
           slot INTEGER PRIMARY KEY CHECK (slot = 1),
           version INTEGER NOT NULL,
           form TEXT NOT NULL,
           blob BLOB NOT NULL,
           saved_s INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS lists_delta (
           version INTEGER PRIMARY KEY,
           base_version INTEGER NOT NULL,
           form TEXT NOT NULL,
           blob BLOB NOT NULL)""",
    # The user groups' change history, append-only. Kept beside the lists (not inside
    # them) because replaying the lists would rebuild it as fresh "create" entries.
    """CREATE TABLE IF NOT EXISTS group_history (
           seq INTEGER PRIMARY KEY AUTOINCREMENT,
           entry BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS site_limit (
           slot INTEGER PRIMARY KEY CHECK (slot = 1),
           body BLOB NOT NULL)""",
)


class StoredListsError(Exception):
    """The stored lists cannot be read back (corrupt blob or broken delta chain)."""


def ensure_schema(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        for statement in _SCHEMA:
            conn.execute(statement)


class ListsStore:
    def __init__(self, conn: sqlite3.Connection, compact_after: int = 50) -> None:
        self._conn = conn
        self.compact_after = compact_after
        ensure_schema(conn)

    # -- writing (each joins the caller's transaction when there is one) ----------------
    def save_snapshot(self, version: int, blob: bytes, form: str = FORM_ENVELOPE,
                      now_s: int = 0, history: Sequence[dict] = ()) -> None:
        """``history``: the change-history entries this snapshot adds, stored with it."""
        _check_form(form)
        with transaction(self._conn) as conn:
            _append_history(conn, history)
            conn.execute("DELETE FROM lists_delta")
            conn.execute("INSERT OR REPLACE INTO lists_base(slot, version, form, blob, saved_s) "
                         "VALUES(1, ?, ?, ?, ?)", (int(version), form, bytes(blob), int(now_s)))

    def save_delta(self, base_version: int, version: int, blob: bytes,
                   form: str = FORM_ENVELOPE) -> None:
        _check_form(form)
        with transaction(self._conn) as conn:
            stored = self._stored_version(conn)
            # The chain must stay replayable: a delta is only stored on the version it
            # was applied to.
            if stored != base_version:
                raise ValueError("delta on version %r cannot follow stored version %r"
                                 % (base_version, stored))
            conn.execute("INSERT INTO lists_delta(version, base_version, form, blob) VALUES(?, ?, ?, ?)",
                         (int(version), int(base_version), form, bytes(blob)))

    def record_delta(self, base_version: int, version: int, blob: bytes, book: Any,
                     now_s: int = 0, history: Sequence[dict] = ()) -> None:
        """Store an applied delta; ``book`` is the book it produced.

        When the stored lists are not at ``base_version`` (the book in memory did not
        come from this store, e.g. the store was wiped) the whole book is stored
        instead, so what is stored always replays to what is in force.
        """
        with transaction(self._conn) as conn:
            _append_history(conn, history)
            if self.stored_version() == base_version:
                self.save_delta(base_version, version, blob, FORM_BODY)
            else:
                self.compact(book, now_s)

    def compact(self, book: Any, now_s: int = 0) -> None:
        """Store ``book`` as the new base and drop the deltas it contains."""
        blob = codec.encode(book.to_snapshot())
        self.save_snapshot(book.version, blob, FORM_BODY, now_s)

    def save_site_limit(self, limit: Optional[dict]) -> None:
        """Persist the current external site limit (None clears it)."""
        with transaction(self._conn) as conn:
            if limit is None:
                conn.execute("DELETE FROM site_limit")
            else:
                conn.execute("INSERT OR REPLACE INTO site_limit(slot, body) VALUES(1, ?)",
                             (codec.encode(limit),))

    # -- reading ---------------------------------------------------------------------------------
    def stored_version(self) -> Optional[int]:
        """Version of the stored lists, None if nothing was ever applied."""
        return self._stored_version(self._conn)

    @staticmethod
    def _stored_version(conn: sqlite3.Connection) -> Optional[int]:
        row = conn.execute("SELECT MAX(version) FROM lists_delta").fetchone()
        if row[0] is not None:
            return int(row[0])
        row = conn.execute("SELECT version FROM lists_base WHERE slot = 1").fetchone()
        return None if row is None else int(row[0])

    def delta_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM lists_delta").fetchone()[0])

    def load_bodies(self) -> Tuple[Optional[dict], List[dict]]:
        """The stored snapshot body and the delta bodies after it, in order."""
        conn = self._conn
        row = conn.execute("SELECT version, form, blob FROM lists_base WHERE slot = 1").fetchone()
        if row is None:
            return None, []
        snapshot = _decode(row[1], row[2], "stored snapshot %d" % row[0])
        deltas = []
        expected = int(row[0])
        for drow in conn.execute("SELECT version, base_version, form, blob FROM lists_delta "
                                 "ORDER BY version").fetchall():
            if int(drow[1]) != expected:
                raise StoredListsError("stored delta %d applies to %d, expected %d"
                                       % (drow[0], drow[1], expected))
            delta = _decode(drow[2], drow[3], "stored delta %d" % drow[0])
            for name in _DELTA_LISTS:
                delta.setdefault(name, [])
            deltas.append(delta)
            expected = int(drow[0])
        return snapshot, deltas

    def load_book(self, site: Any, now_s: int = 0) -> Optional[Any]:
        """Rebuild the applied book, or None when nothing usable is stored.

        Stored lists that the current site configuration refuses are not used (logged
        as a WARNING): the edge then asks the cloud for a fresh snapshot.
        """
        from edge.core.book import GroupBook
        try:
            snapshot, deltas = self.load_bodies()
        except StoredListsError as exc:
            log.warning("stored cloud lists unreadable, ignoring them: %s", exc)
            return None
        if snapshot is None:
            return None
        try:
            book = GroupBook.from_snapshot(snapshot, site, by="restore", now_s=now_s)
            for delta in deltas:
                book = book.apply_delta(delta, site, "restore", now_s)
        except ValidationError as exc:
            log.warning("stored cloud lists no longer valid for this site, ignoring them: %s", exc)
            return None
        history = self.load_history()
        if history:
            # The replay above wrote "restore" entries; what really happened is stored.
            # The book is not shared with any reader yet, so it can take its history.
            book.history = history
        if len(deltas) > self.compact_after:
            self.compact(book, now_s)
        return book

    def load_history(self) -> List[dict]:
        """The stored change history, oldest first (unreadable entries are skipped, logged)."""
        out = []
        for seq, blob in self._conn.execute("SELECT seq, entry FROM group_history ORDER BY seq"):
            try:
                out.append(_decode(FORM_BODY, blob, "stored history entry %d" % seq))
            except StoredListsError as exc:
                log.warning("%s", exc)
        return out

    def load_site_limit(self) -> Optional[dict]:
        row = self._conn.execute("SELECT body FROM site_limit WHERE slot = 1").fetchone()
        if row is None:
            return None
        try:
            return _decode(FORM_BODY, row[0], "stored site limit")
        except StoredListsError as exc:
            log.warning("%s", exc)
            return None


def _append_history(conn: sqlite3.Connection, entries: Sequence[dict]) -> None:
    if entries:
        conn.executemany("INSERT INTO group_history(entry) VALUES(?)",
                         [(codec.encode(e),) for e in entries])


def _check_form(form: str) -> None:
    if form not in (FORM_ENVELOPE, FORM_BODY):
        raise ValueError("form: must be %r or %r (got %r)" % (FORM_ENVELOPE, FORM_BODY, form))


def _decode(form: str, blob: bytes, what: str) -> dict:
    try:
        obj = codec.decode_payload(bytes(blob), len(blob) + 1)
        if form == FORM_ENVELOPE:
            obj = codec.check_envelope(obj, None).body
    except ValidationError as exc:
        raise StoredListsError("%s: %s" % (what, exc)) from None
    if not isinstance(obj, dict):
        raise StoredListsError("%s: not a map" % what)
    return obj
