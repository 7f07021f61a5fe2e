"""Sessions on request that are not finished yet, so an export survives a restart.

A ``sessions_request`` is acknowledged to the broker when it arrives; if the edge
stopped mid-export (restart, power cut) nobody would finish it. So each running export
keeps a row here: the request as received, the last part the broker acknowledged and
the key-set position after it, and how many records went out so far. The row is
written after every acknowledged part and removed when the last part is out; the
cloud link resumes every row at its next connect (edge/cloud/session_export.py).

Bounded: at most ``max_jobs`` rows (a new request beyond that is refused ``busy``), and
rows older than ``max_age_s`` are dropped on load (the cloud has asked again by then).
The store knows no wire format: the request is the neutral dict, kept as JSON.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any, Optional

from edge.store.db import transaction

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS export_jobs (
    request_id TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    created_s INTEGER NOT NULL,
    part INTEGER NOT NULL DEFAULT 0,
    after TEXT,
    sent INTEGER NOT NULL DEFAULT 0
);
"""


class ExportJob:
    """An unfinished export: ``part`` parts acknowledged, ``sent`` records in them,
    ``after`` the (started_s, session_id) position after the last one (None: from the start)."""

    def __init__(self, request: dict, part: int = 0, after: Optional[tuple] = None, sent: int = 0) -> None:
        self.request = request
        self.part = part
        self.after = after
        self.sent = sent

    @property
    def request_id(self) -> str:
        return self.request["request_id"]


class ExportJobs:
    def __init__(self, conn: sqlite3.Connection, *, max_jobs: int = 8, max_age_s: int = 7 * 86400) -> None:
        self._conn = conn
        self.max_jobs = max_jobs
        self.max_age_s = max_age_s
        conn.executescript(_SCHEMA)

    def begin(self, request: dict, now_s: int) -> Optional[ExportJob]:
        """A new job for ``request``, or the stored one of the same request id (resumed);
        None when ``max_jobs`` are open already."""
        existing = self.get(request["request_id"])
        if existing is not None:
            return existing
        with transaction(self._conn) as c:
            (count,) = c.execute("SELECT COUNT(*) FROM export_jobs").fetchone()
            if count >= self.max_jobs:
                return None
            c.execute("INSERT INTO export_jobs (request_id, request, created_s) VALUES (?, ?, ?)",
                      (request["request_id"], json.dumps(request), int(now_s)))
        return ExportJob(request)

    def progress(self, job: ExportJob, part: int, after: tuple, sent: int) -> None:
        """Part ``part`` is acknowledged: a restart resumes after it."""
        with transaction(self._conn) as c:
            c.execute("UPDATE export_jobs SET part=?, after=?, sent=? WHERE request_id=?",
                      (part, json.dumps(list(after)), sent, job.request_id))
        job.part, job.after, job.sent = part, after, sent

    def finish(self, request_id: str) -> None:
        with transaction(self._conn) as c:
            c.execute("DELETE FROM export_jobs WHERE request_id=?", (request_id,))

    def get(self, request_id: str) -> Optional[ExportJob]:
        row = self._conn.execute("SELECT request, part, after, sent FROM export_jobs WHERE request_id=?",
                                 (request_id,)).fetchone()
        return None if row is None else _job(request_id, *tuple(row))

    def pending(self, now_s: int) -> list[ExportJob]:
        """The unfinished jobs, oldest first; those older than ``max_age_s`` are dropped."""
        with transaction(self._conn) as c:
            gone = c.execute("DELETE FROM export_jobs WHERE created_s < ?", (int(now_s) - self.max_age_s,)).rowcount
        if gone:
            log.info("sessions on request: %d unfinished export(s) older than %d days dropped",
                     gone, self.max_age_s // 86400)
        rows = self._conn.execute("SELECT request_id, request, part, after, sent FROM export_jobs "
                                  "ORDER BY created_s, request_id").fetchall()
        jobs = []
        for row in rows:
            job = _job(*tuple(row))
            if job is None:
                self.finish(row[0])
            else:
                jobs.append(job)
        return jobs


def _job(request_id: str, request: str, part: int, after: Optional[str], sent: int) -> Optional[ExportJob]:
    try:
        req: Any = json.loads(request)
        pos: Any = None if after is None else json.loads(after)
    except ValueError:
        log.warning("sessions on request: the stored export %s is damaged; dropped", request_id[:64])
        return None
    if not isinstance(req, dict) or (pos is not None and not (isinstance(pos, list) and len(pos) == 2)):
        return None
    return ExportJob(req, int(part), None if pos is None else (int(pos[0]), str(pos[1])), int(sent))
