"""kill -9 while writing: every step reported as done is on disk, nothing is half-written."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from edge.store.db import open_db
from edge.store.lists import ListsStore
from edge.store.outbox import Outbox

from .cloud_samples import make_site

ROOT = Path(__file__).resolve().parents[2]


def run_until_killed(mode: str, db: Path, lines_wanted: int) -> list:
    proc = subprocess.Popen([sys.executable, "-m", "tests.cloud_data.crash_writer", mode, str(db)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            assert not line.startswith("ERROR"), line
            if len(lines) >= lines_wanted:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert len(lines) >= lines_wanted, err
    assert proc.returncode == -signal.SIGKILL
    return lines


def test_outbox_records_survive_sigkill_in_order(tmp_path):
    db = tmp_path / "edge.db"
    reported = run_until_killed("records", db, 300)
    box = Outbox(open_db(db))
    stored = [r.id for r in box.pending(100_000)]
    # everything reported is stored, in the reported order; at most the one record in
    # flight at the kill may be there without having been reported
    assert stored[:len(reported)] == reported
    assert len(stored) - len(reported) <= 1
    bodies = [r.decoded_body()["n"] for r in box.pending(100_000)]
    assert bodies == list(range(len(stored)))
    assert box.seq_of(box.enqueue("session", "s-x", {})) == len(stored) + 1


def test_lists_survive_sigkill_whole(tmp_path):
    db = tmp_path / "edge.db"
    site = make_site()
    reported = run_until_killed("lists", db, 40)
    store = ListsStore(open_db(db))
    book = store.load_book(site)
    last = int(reported[-1])
    assert book is not None and book.version in (last, last + 1)
    # the book is complete for its version: the 3000 tokens of its last snapshot plus
    # one token per delta after it
    since_snapshot = book.version - (((book.version - 1) // 5) * 5 + 1)
    assert book.token_count() == 3000 + since_snapshot
    # and the edge restarts from there (deltas continue on it)
    assert store.stored_version() == book.version
