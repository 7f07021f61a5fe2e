"""The local HTTP server: API, live page and metrics on the service's event loop.

Built on aiohttp's server (docs/local-api.md says why): it runs on the asyncio
loop the OCPP gateway and the control loop already share, so a handler reads the
service's state directly, with no thread and no lock; it parses HTTP, streams
responses (server-sent events, CSV) and speaks TLS through the stdlib ssl module.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from edge.web.api import Api
from edge.web.auth import Authenticator, middleware
from edge.web.live import LiveHub
from edge.web.metrics import Metrics
from edge.web.settings import HttpSettings

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


class WebServer:
    def __init__(self, service: Any, settings: HttpSettings) -> None:
        self.service = service
        self.settings = settings
        self.auth = Authenticator(settings)
        self.live = LiveHub(service)
        self.metrics = Metrics(service)
        self.app = web.Application(middlewares=[_security_headers, middleware(self.auth)],
                                   client_max_size=64 * 1024)
        self.app.add_routes(Api(service).routes())
        self.app.add_routes([
            web.get("/", self.index),
            web.get("/api/v1/live", self.live.stream),
            web.get("/metrics", self.prometheus),
            web.static("/static", STATIC),
        ])
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> int:
        ssl_ctx = self.settings.ssl_context()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port, ssl_context=ssl_ctx)
        await site.start()
        self.port = self._runner.addresses[0][1]     # the real one when 0 asked for any free port
        log.info("local API on %s://%s:%d", "https" if ssl_ctx else "http", self.settings.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def prometheus(self, request: web.Request) -> web.Response:
        body, ctype = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": ctype})


@web.middleware
async def _security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        resp = exc
        _headers(resp)
        raise
    _headers(resp)
    return resp


def _headers(resp: web.StreamResponse) -> None:
    if resp.prepared:
        return
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'")
    resp.headers.setdefault("Cache-Control", "no-store")
