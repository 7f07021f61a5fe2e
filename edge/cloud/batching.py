"""Upstream batching of outbox records into ``records`` messages, and ack handling.

Draining a backlog one record per message would cap it at what a small board's MQTT
client can publish per second, so records are batched (at most ``max_records`` and
``max_bytes`` per message) with a window of ``window`` unacknowledged batches in flight.

A backlog must not hold back live records (a session starting now should reach the
cloud in seconds even while 10,000 old ones drain). At every (re)connect the newest
outbox sequence is the backlog watermark; each batch reserves ``live_share`` of its
records for records queued after it. A live record is only taken early when no older
record with the same key (the same session) is still unsent, so per-session order
holds. Batches put backlog records first, live records after them.

After a reconnect, or when a batch stays unacknowledged for ``resend_after_s``,
everything unacknowledged is sent again from the start, in order: the cloud drops
duplicates by record id.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Callable, Iterable, List, Optional

from edge.cloud import codec, messages
from edge.cloud.codec import Limits

log = logging.getLogger(__name__)


class Batch:
    """One published ``records`` message and the record ids it still waits for."""

    __slots__ = ("msg_id", "topic", "payload", "record_ids", "waiting", "sent_at", "live_count")

    def __init__(self, msg_id: str, topic: str, payload: bytes, record_ids: List[str],
                 sent_at: float, live_count: int) -> None:
        self.msg_id = msg_id
        self.topic = topic
        self.payload = payload
        self.record_ids = record_ids
        self.waiting = set(record_ids)  # type: Set[str]
        self.sent_at = sent_at
        self.live_count = live_count

    def __repr__(self) -> str:
        return "Batch(%s, %d records, %d waiting)" % (self.msg_id, len(self.record_ids), len(self.waiting))


class UpstreamBatcher:
    def __init__(self, outbox, site_id: str, *, clock: Callable[[], float] = time.time,
                 ids: Optional[Callable[[], str]] = None, limits: Limits = codec.DEFAULT_LIMITS,
                 max_records: Optional[int] = None, max_bytes: Optional[int] = None,
                 window: int = 4, live_share: float = 0.25, resend_after_s: float = 60.0) -> None:
        self.outbox = outbox
        self.site_id = messages.check_site_id(site_id)
        self.topic = messages.up_topic(site_id, "records")
        self._clock = clock
        self._ids = ids or messages.MessageIds()
        self.max_records = max_records or limits.records_count
        self.max_bytes = max_bytes or limits.records_bytes
        if not 1 <= self.max_records <= limits.records_count:
            raise ValueError("max_records: must be 1..%d (got %r)" % (limits.records_count, max_records))
        if self.max_bytes < 2 * codec.KiB + 64 * codec.KiB:
            raise ValueError("max_bytes: must leave room for one record of 64 KiB (got %r)" % (max_bytes,))
        self.window = max(1, int(window))
        self.live_quota = max(1, int(self.max_records * live_share))
        self.resend_after_s = resend_after_s
        self._in_flight = OrderedDict()  # type: OrderedDict[str, Batch]
        self._batch_of = {}  # type: Dict[str, Batch]
        self.on_connect()

    # -- connection life cycle -----------------------------------------------------------------
    def on_connect(self) -> None:
        """Start over: every unacknowledged record is due again, oldest first."""
        self._in_flight.clear()
        self._batch_of.clear()
        self._watermark = self.outbox.last_seq()
        self._backlog_cursor = 0
        self._live_cursor = self._watermark

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def backlog_done(self) -> bool:
        return self._backlog_cursor >= self._watermark

    # -- sending --------------------------------------------------------------------------------
    def next_batch(self) -> Optional[Batch]:
        """The next message to publish, or None (window full or nothing due).

        The caller publishes ``batch.payload`` on ``batch.topic`` with QoS 1.
        """
        now = self._clock()
        if self._in_flight:
            oldest = next(iter(self._in_flight.values()))
            if now - oldest.sent_at >= self.resend_after_s:
                log.warning("records batch %s unacknowledged for %.0f s: sending every "
                            "unacknowledged record again", oldest.msg_id, now - oldest.sent_at)
                self.on_connect()
        if len(self._in_flight) >= self.window or self.outbox.in_transaction:
            return None
        backlog, live = self._select()
        if not backlog and not live:
            if self._in_flight or not self.outbox.pending(1, upto=self._live_cursor):
                return None
            # Nothing in flight, yet a record behind the cursors is still queued: it
            # was never sent (or its ack was lost); start over rather than strand it.
            log.info("unsent records behind the send position: sending every unacknowledged record again")
            self.on_connect()
            backlog, live = self._select()
            if not backlog and not live:
                return None
        msg_id = self._ids()
        pieces = []
        record_ids = []
        size = len(codec.records_message_header(msg_id, self.site_id, int(now), self.max_records))
        taken_backlog = 0
        taken_live = 0
        for group, is_live in ((backlog, False), (live, True)):
            for rec in group:
                piece = codec.packed_record(rec.id, rec.kind, rec.key, rec.at_s, rec.body)
                if record_ids and size + len(piece) > self.max_bytes:
                    break
                size += len(piece)
                pieces.append(piece)
                record_ids.append(rec.id)
                if is_live:
                    taken_live += 1
                    self._live_cursor = rec.seq
                else:
                    taken_backlog += 1
                    self._backlog_cursor = rec.seq
            else:
                continue
            break  # byte limit reached: later records (and all live ones) wait
        if not backlog or (taken_backlog == len(backlog) and self._backlog_exhausted_after(backlog)):
            self._backlog_cursor = max(self._backlog_cursor, self._watermark)
        header = codec.records_message_header(msg_id, self.site_id, int(now), len(pieces))
        batch = Batch(msg_id, self.topic, header + b"".join(pieces), record_ids, now, taken_live)
        self._in_flight[msg_id] = batch
        for rid in record_ids:
            self._batch_of[rid] = batch
        return batch

    def due_batches(self) -> List[Batch]:
        """As many batches as the window allows now."""
        out = []
        while True:
            batch = self.next_batch()
            if batch is None:
                return out
            out.append(batch)

    def _select(self):
        live_limit = self.max_records
        backlog = []
        if self._backlog_cursor < self._watermark:
            live_limit = self.live_quota
        live = self.outbox.pending(live_limit, after=self._live_cursor)
        if self._backlog_cursor < self._watermark:
            backlog = self.outbox.pending(self.max_records - len(live), after=self._backlog_cursor,
                                          upto=self._watermark)
            last_backlog = backlog[-1].seq if backlog else self._watermark
            if len(backlog) < self.max_records - len(live):
                last_backlog = self._watermark
            if last_backlog < self._watermark:
                allowed = []
                for rec in live:
                    # A session's later record must not overtake its earlier one.
                    if self.outbox.has_pending_key(rec.key, last_backlog, self._watermark):
                        break
                    allowed.append(rec)
                live = allowed
        return backlog, live

    def _backlog_exhausted_after(self, backlog) -> bool:
        return not self.outbox.pending(1, after=backlog[-1].seq, upto=self._watermark)

    # -- acknowledgements ------------------------------------------------------------------------
    def ack(self, record_ids: Iterable[str]) -> int:
        """Handle a cloud ``ack``: delete the records, free the window. Returns records removed."""
        ids = list(record_ids)
        removed = self.outbox.ack(ids)
        for rid in ids:
            batch = self._batch_of.pop(rid, None)
            if batch is None:
                continue
            batch.waiting.discard(rid)
            if not batch.waiting:
                self._in_flight.pop(batch.msg_id, None)
        return removed
