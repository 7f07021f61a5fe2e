"""Sessions on request: the cloud asks for the session records of a period again.

The answer is read from the session store, not from the outbox (which only holds what
was not yet acknowledged), and goes out as ``sessions_export`` messages beside the live
record batches, never through the outbox: the live records keep their order, their
window and their acknowledgements. Each exported record has the id its latest live
record had, so the cloud drops what it already holds.

One export message is in flight at a time: the next part is published only after the
broker acknowledged the previous one (QoS 1 PUBACK), so a large export never fills
the client's queue ahead of live records. The store is read a page at a time between
parts, so the event loop is never held for long.

Durable with a job store (edge/store/export_jobs.py): after each acknowledged part
the position after its last session is stored, so an export cut by a restart or a
lost link resumes at the next connect with the following part, and the last part's
``total`` still counts every part. A part the broker had not acknowledged yet is sent
again (same request, same part number, the same sessions from the same position;
records keep their ids, so the cloud drops what it holds).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Optional

from edge.cloud import codec, messages

log = logging.getLogger(__name__)

# (record_id, session_id, at_s, record body) for sessions started in [from_s, to_s)
Reader = Callable[[int, int, Optional[tuple], int], Any]


class ExportAborted(Exception):
    """The link went down (``link_lost``: a durable export goes on at the next connect)
    or the broker stopped acknowledging."""

    def __init__(self, message: str, link_lost: bool = False) -> None:
        super().__init__(message)
        self.link_lost = link_lost


class SessionExporter:
    """Publishes the session records of a period in parts.

    ``read(from_s, to_s, after, limit)`` returns a page with ``items`` and ``after``
    (edge.store.session_records.between through SessionStore.records_between);
    ``publish(topic, payload)`` returns an object with ``is_published()`` or None when
    offline (MqttConnection.publish_tracked).
    """

    def __init__(self, site_id: str, read: Reader, publish: Callable[[str, bytes], Any],
                 connected: Callable[[], bool] = lambda: True, *, clock: Callable[[], float] = time.time, ids: Optional[Callable[[], str]] = None,
                 max_records: int = 200, max_bytes: int = 128 * codec.KiB,
                 puback_timeout_s: float = 30.0, poll_s: float = 0.005) -> None:
        self.site_id = messages.check_site_id(site_id)
        self.topic = messages.up_topic(site_id, "sessions_export")
        self._read = read
        self._publish = publish
        self._connected = connected
        self._clock = clock
        self._ids = ids or messages.MessageIds()
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.puback_timeout_s = puback_timeout_s
        self.poll_s = poll_s

    async def run(self, request: dict, job: Any = None, jobs: Any = None) -> int:
        """Export every session of the requested period; returns how many records.

        ``job``/``jobs``: an ``ExportJob`` and its ``ExportJobs`` store: the export
        starts after the job's acknowledged parts and records its progress there.
        Raises ExportAborted when a part could not be delivered.
        """
        rid = request["request_id"]
        limit = min(self.max_records, request.get("max_records") or self.max_records)
        part = job.part if job is not None else 0
        total = job.sent if job is not None else 0
        after = job.after if job is not None else None
        pending: list = []
        size = 0
        done = False
        while not done:
            page = self._read(request["from_s"], request["to_s"], after, limit)
            after = page.after
            done = after is None
            for rec_id, session_id, at_s, body in page.items:
                rec = {"id": rec_id, "kind": "session", "key": session_id, "at_s": at_s, "body": body}
                rec_size = len(codec.encode(rec))
                if pending and (len(pending) >= limit or size + rec_size > self.max_bytes):
                    part += 1
                    await self._send(rid, part, pending, False, None)
                    if jobs is not None:
                        last = pending[-1]
                        jobs.progress(job, part, (last["body"]["started_s"], last["key"]), total)
                    pending, size = [], 0
                pending.append(rec)
                size += rec_size
                total += 1
            await asyncio.sleep(0)      # let live work run between pages
        part += 1
        await self._send(rid, part, pending, True, total)
        log.info("sessions_request %s: %d records in %d parts", rid, total, part)
        return total

    async def _send(self, rid: str, part: int, records: list, last: bool,
                    total: Optional[int]) -> None:
        body = {"request_id": rid, "part": part, "last": last, "records": records,
                "total": total}
        topic, payload = messages.build(self.site_id, "sessions_export", body, self._ids(),
                                        int(self._clock()))
        info = self._publish(topic, payload)
        if info is None:
            raise ExportAborted("the cloud link is down", link_lost=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.puback_timeout_s
        while not _published(info):
            if not self._connected():
                raise ExportAborted("the cloud link went down at part %d" % part, link_lost=True)
            if loop.time() > deadline:
                raise ExportAborted("part %d not acknowledged by the broker within %.0f s"
                                    % (part, self.puback_timeout_s))
            await asyncio.sleep(self.poll_s)


def _published(info: Any) -> bool:
    try:
        return bool(info.is_published())
    except (ValueError, RuntimeError) as exc:      # not queued, or failed in paho
        raise ExportAborted("part not sent: %s" % exc) from None
