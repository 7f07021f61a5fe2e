"""Server-sent events for the live page: one message per control step, at most one
a second, with the status, the connectors and the events since the last one.

The message is built once per step for all clients (and not at all without one);
each client waits on the hub's event and sends the latest message. A slow phone
on a bad link only ever gets the newest state, never a backlog.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from edge import site_status

_MIN_GAP_S = 1.0
_KEEPALIVE_S = 15.0


class LiveHub:
    def __init__(self, service: Any) -> None:
        self.service = service
        self.clients = 0
        self._changed = asyncio.Event()
        self._message: bytes | None = None
        self._built_at = 0.0
        service.on_cycle(self._on_cycle)

    def _on_cycle(self, _service: Any) -> None:
        if self.clients:
            self._message = None
            self._changed.set()
            self._changed = asyncio.Event()

    def message(self) -> bytes:
        if self._message is None:
            body = {"status": site_status.site(self.service),
                    "connectors": site_status.connectors(self.service),
                    "events": self.service.events.recent(30)}
            self._message = ("event: state\ndata: %s\n\n" % json.dumps(body, separators=(",", ":"))).encode()
        return self._message

    async def stream(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        self.clients += 1
        try:
            await resp.write(b"retry: 3000\n\n" + self.message())
            sent_at = time.monotonic()
            while True:
                changed = self._changed
                try:
                    await asyncio.wait_for(changed.wait(), _KEEPALIVE_S)
                except asyncio.TimeoutError:
                    await resp.write(b": keepalive\n\n")
                    continue
                gap = _MIN_GAP_S - (time.monotonic() - sent_at)
                if gap > 0:
                    await asyncio.sleep(gap)
                await resp.write(self.message())
                sent_at = time.monotonic()
        except ConnectionResetError:
            pass        # the page was closed
        finally:
            self.clients -= 1
        return resp
