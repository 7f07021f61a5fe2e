"""One websocket connection of one wallbox: strict framing, duplicates, flood pacing.

The ocpp library's own receive loop is not used: every frame is checked here first
(see framing.py), duplicates are filtered, and only well-formed, schema-valid CALLs
and responses to our own calls reach the library's ``route_message``. Frames are
handled one after the other, so a flooding wallbox is slowed down by TCP back-pressure
and by a token bucket, never by growing queues; other wallboxes are not affected.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from typing import Any, Awaitable, Callable

import websockets

from edge.ocpp_gateway import framing, peer_text

log = logging.getLogger(__name__)

# Recent CALL ids remembered per connection for duplicate detection. OCPP-J allows one
# CALL in flight per direction, so a retransmission repeats the last message or, after
# a lost answer and a timeout, one of the last few. Each entry costs ~300 B: 64 per
# connection were ~6 MB for 300 wallboxes, and took ten minutes of traffic to fill.
SEEN_IDS_MAX = 8
# Our own CALLs awaiting an answer: one at a time per connection in practice; an id
# whose answer never came ages out.
ASKED_IDS_MAX = 32


def _fingerprint(frame: framing.Frame) -> bytes:
    body = json.dumps([frame.action, frame.payload], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(body.encode(), digest_size=8).digest()


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate_per_s)
        self.burst = float(burst)
        self.tokens = float(burst)
        self._clock = clock
        self._at = clock()

    def wait_s(self) -> float:
        """Take one token; returns how long to wait before processing (0 if none)."""
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._at) * self.rate)
        self._at = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class LinkClosed(Exception):
    """The wallbox's connection ended while the edge was waiting for its answer."""


class GuardedCalls:
    """Mixin for the version ChargePoints: outgoing calls end when the connection ends.

    The library would wait ``response_timeout`` for an answer that can no longer come,
    holding up whatever sequence (after-boot, list sync) made the call.

    Outgoing calls also skip the library's schema validation, which runs in a worker
    thread twice per call: an allocation change to 500 wallboxes queued 1000 thread
    hops. Our requests are built by code whose output the tests' wallboxes validate;
    a malformed answer from a wallbox fails where its fields are read, and every
    caller treats that as a failed call.
    """

    async def call(self, payload: Any, suppress: bool = True, unique_id: Any = None,
                   skip_schema_validation: bool = True) -> Any:
        return await self._connection.guard(super().call(  # type: ignore[misc]
            payload, suppress=suppress, unique_id=unique_id,
            skip_schema_validation=skip_schema_validation))


class Link:
    """Reader loop; also the ``connection`` object handed to the library ChargePoint."""

    def __init__(self, ws: Any, st: Any, version: str, bucket: TokenBucket,
                 on_resumed: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time,
                 pace: Callable[[], Awaitable[None]] | None = None) -> None:
        self.ws = ws
        self.st = st
        self.version = version
        self.bucket = bucket
        # While the wallbox is starting (until the edge's after-boot or catch-up work for
        # this connection is done), each frame waits for its turn (pacing.TurnPacer):
        # hundreds of wallboxes booting at once must not crowd out the control loop.
        self.pace = pace
        self.starting = pace is not None
        self.cp: Any = None
        self.on_resumed = on_resumed
        self._first_call_seen = False
        self.clock = clock
        self.frames_in = 0
        self.errors_sent = 0       # bad frames seen (answered or, for responses, dropped)
        self.duplicates = 0
        # ids of our own CALLs awaiting an answer (bounded: a timed-out call's id ages out)
        self._asked: OrderedDict[str, bool] = OrderedDict()
        # the wallbox's recent CALL ids on this connection: id -> [answered, fingerprint].
        # Per connection only: a wallbox numbers from 1 again after a reboot, and an
        # answer remembered from an earlier connection may be a decision the lists have
        # outdated since.
        self._seen: OrderedDict[str, list] = OrderedDict()
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()

    async def guard(self, coro: Any) -> Any:
        """Await ``coro`` unless the connection ends first (then LinkClosed)."""
        if self.closed.done():
            coro.close()
            raise LinkClosed(self.st.id)
        task = asyncio.ensure_future(coro)
        await asyncio.wait({task, self.closed}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        raise LinkClosed(self.st.id)

    def new_call_id(self) -> str:
        """Id generator handed to the library ChargePoint; remembers what we asked."""
        uid = uuid.uuid4().hex
        self._asked[uid] = True
        while len(self._asked) > ASKED_IDS_MAX:
            self._asked.popitem(last=False)
        return uid

    # the library ChargePoint sends through here
    async def send(self, text: str) -> None:
        self._remember_reply(text)
        await self.ws.send(text)

    async def recv(self) -> str:  # pragma: no cover - the library's start() is not used
        raise RuntimeError("Link.run() reads frames; ChargePoint.start() must not be used")

    def _remember_reply(self, text: str) -> None:
        if not text.startswith(("[3", "[4")):
            return
        try:
            uid = json.loads(text)[1]
        except (ValueError, IndexError, TypeError):
            return
        entry = self._seen.get(uid)
        if entry is None or entry[0]:
            return
        if text.startswith("[4"):
            # Processing failed (e.g. the store was busy): nothing was acknowledged, so a
            # retry with the same id must be processed.
            del self._seen[uid]
        else:
            entry[0] = True

    def _remember_call(self, uid: str, fingerprint: bytes) -> None:
        self._seen.pop(uid, None)
        self._seen[uid] = [False, fingerprint]
        while len(self._seen) > SEEN_IDS_MAX:
            self._seen.popitem(last=False)

    async def _send_error(self, err: framing.FrameError, action: str | None = None) -> None:
        self.errors_sent += 1
        label = action or "unparsed"
        self.st.errors_out[label] = self.st.errors_out.get(label, 0) + 1
        # WARNING for the first bad frame of a connection, DEBUG afterwards: a broken
        # wallbox must not flood the log.
        level = logging.WARNING if self.errors_sent == 1 else logging.DEBUG
        # the error text quotes what the wallbox sent (an action name, a field): cut it
        log.log(level, "station %s: %s (message %s; %d bad frames on this connection)",
                self.st.id, peer_text.quote(err, 200), peer_text.quote(err.unique_id),
                self.errors_sent)
        await self.ws.send(err.reply)

    async def run(self) -> None:
        try:
            await self._read()
        finally:
            if not self.closed.done():
                self.closed.set_result(None)

    async def _read(self) -> None:
        async for raw in self.ws:
            self.frames_in += 1
            self.st.last_seen_s = int(self.clock())
            delay = self.bucket.wait_s()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.starting and self.pace is not None:
                await self.pace()
            try:
                await self.handle(raw)
            except websockets.ConnectionClosed:
                raise
            except Exception:
                # A bug or a broken store must cost one message, not the connection.
                log.exception("station %s: frame handling failed", self.st.id)

    async def handle(self, raw: str | bytes) -> None:
        try:
            frame = framing.parse(raw, self.version)
        except framing.FrameError as err:
            await self._send_error(err)
            return
        if frame.kind == "junk":
            self.errors_sent += 1      # counted with bad frames: same once-per-link rule
            level = logging.WARNING if self.errors_sent == 1 else logging.DEBUG
            log.log(level, "station %s: malformed response frame ignored", self.st.id)
            return
        if frame.kind != "call":
            if self._asked.pop(frame.unique_id, False):
                await self.cp.route_message(raw)
            else:
                # Unsolicited or late answers would pile up in the library's response
                # queue (unbounded): drop them here.
                log.debug("station %s: answer to unknown call %s dropped", self.st.id,
                          frame.unique_id)
            return
        fp = _fingerprint(frame)
        seen = self._seen.get(frame.unique_id)
        # Only the same id with the same content on this connection is a duplicate
        # (many wallboxes number their messages from 1 again after a reboot). It is
        # never answered from memory: an Authorize already answered is decided afresh
        # (the lists may have changed since), anything else is ignored while or after
        # it is processed (the handlers that write are idempotent on a new connection).
        if seen is not None and seen[1] == fp and not (seen[0] and frame.action == "Authorize"):
            self.duplicates += 1
            level = logging.WARNING if self.duplicates == 1 else logging.DEBUG
            log.log(level, "station %s: duplicate message id %s ignored", self.st.id,
                    frame.unique_id)
            return
        try:
            if not framing.is_known_action(frame.action, self.version):
                raise framing.FrameError(frame.unique_id, "NotImplemented",
                                         "unknown action %r" % (frame.action,))
            if frame.action not in self.cp.route_map or \
                    "_on_action" not in self.cp.route_map[frame.action]:
                raise framing.FrameError(frame.unique_id, "NotSupported",
                                         "action %s is not supported by this server"
                                         % frame.action)
            framing.check_schema(frame, self.version)
        except framing.FrameError as err:
            await self._send_error(err, frame.action if framing.is_known_action(frame.action, self.version)
                                   else "unknown")
            return
        self.st.calls_in[frame.action] = self.st.calls_in.get(frame.action, 0) + 1
        self._remember_call(frame.unique_id, fp)
        await self.cp.route_message(raw)
        if not self._first_call_seen:
            self._first_call_seen = True
            if frame.action != "BootNotification" and self.on_resumed:
                # The wallbox carries on without booting (a reconnect): catch up on
                # what changed while it was away.
                self.on_resumed()
