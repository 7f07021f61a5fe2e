"""Opens the durable SQLite store: WAL journal, synchronous=FULL.

FULL (not NORMAL) because a session acknowledged to a wallbox or queued for the cloud
must survive a power cut; NORMAL may lose the last commits in WAL mode.
Each store module (sessions, outbox, lists) creates its own tables with
``ensure_schema(conn)``, so they can be used alone in tests.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# Small pages: every commit writes each page it changed, whole, to the WAL (and fsyncs),
# and a session start or stop changes one leaf in each of about a dozen tables and
# indexes with rows of a few hundred bytes. At 1 KiB a start writes ~21 kB instead of
# ~58 kB at SQLite's default 4 KiB (bench/bench_soak.py, "write cost" rows); what a
# card wears is bytes written. Reads of this small store do not suffer from it.
PAGE_SIZE = 1024


def open_db(path: str | Path) -> sqlite3.Connection:
    """Open (or create) the store. ``":memory:"`` works for tests that need no durability."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    # only takes effect for a new file (before its first write); an older store is
    # converted once by ensure_layout
    conn.execute("PRAGMA page_size=%d" % PAGE_SIZE)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    # After a checkpoint the WAL file is cut back to this size instead of staying as
    # large as the biggest burst (retention deletes in bursts).
    conn.execute("PRAGMA journal_size_limit=%d" % (4 * 1024 * 1024))
    from edge.store.retention import ensure_layout   # it uses this module
    ensure_layout(conn)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One all-or-nothing write: BEGIN IMMEDIATE ... COMMIT, rolled back on any error.

    Nested use joins the outer transaction, so a session write and its outbox record
    commit together.
    """
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # SQLite may already have rolled back by itself (SQLITE_FULL, I/O errors): a
        # second ROLLBACK would fail and hide the real error behind "no transaction".
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """Open the store for reading while the service writes it (`edge sessions export`).

    ``mode=ro`` never writes, never creates a missing file, and in WAL mode reads the
    last committed state without blocking the service's writes.
    """
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=5000")
    return conn
