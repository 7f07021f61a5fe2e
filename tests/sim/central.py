"""A minimal OCPP central system for the simulator's tests (a test peer, not the product).

It accepts any station, checks HTTP Basic auth when passwords are given,
records every call it receives as (action, payload as on the wire in
snake_case) and lets the test send calls to a connected station.
"""
from __future__ import annotations

import asyncio
import base64
import http
import itertools
from datetime import datetime, timezone

from ocpp.routing import on
from ocpp.v16 import ChargePoint as CP16, call_result as r16
from ocpp.v201 import ChargePoint as CP201, call_result as r201
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Recorder:
    async def _send(self, message):
        # A station may close right after a frame (a hard reset does): an answer that
        # can no longer go out must not end the reader before it has read what came
        # before the close (e.g. the answer to our own pending call).
        try:
            await super()._send(message)
        except ConnectionClosed:
            pass

    def record(self, action, payload):
        self.central.received.append((self.id, action, payload))
        self.central.changed.set()
        if action in self.central.fail_actions:
            # The library turns this into a CallError (InternalError) for the station.
            raise RuntimeError("told to fail " + action)

    async def maybe_hang_up(self, action):
        """Close the connection instead of answering, once per action in `hang_up_on`."""
        if action in self.central.hang_up_on:
            self.central.hang_up_on.discard(action)
            await self._connection.close()


class Central16(_Recorder, CP16):
    def __init__(self, cid, ws, central):
        super().__init__(cid, ws, response_timeout=5)
        self.central = central

    @on("BootNotification")
    def on_boot(self, **kw):
        self.record("BootNotification", kw)
        return r16.BootNotification(current_time=now_iso(), interval=self.central.boot_interval(),
                                    status=self.central.boot_status())

    @on("Heartbeat")
    def on_heartbeat(self, **kw):
        self.record("Heartbeat", kw)
        return r16.Heartbeat(current_time=now_iso())

    @on("StatusNotification")
    def on_status(self, **kw):
        self.record("StatusNotification", kw)
        return r16.StatusNotification()

    @on("Authorize")
    def on_authorize(self, **kw):
        self.record("Authorize", kw)
        ok = kw["id_tag"] in self.central.tokens
        return r16.Authorize(id_tag_info={"status": "Accepted" if ok else "Invalid"})

    @on("StartTransaction")
    async def on_start_tx(self, **kw):
        self.record("StartTransaction", kw)
        await self.maybe_hang_up("StartTransaction")
        ok = kw["id_tag"] in self.central.tokens
        return r16.StartTransaction(transaction_id=next(self.central.tx_ids),
                                    id_tag_info={"status": "Accepted" if ok else "Invalid"})

    @on("MeterValues")
    def on_meter_values(self, **kw):
        self.record("MeterValues", kw)
        return r16.MeterValues()

    @on("StopTransaction")
    def on_stop_tx(self, **kw):
        self.record("StopTransaction", kw)
        return r16.StopTransaction()


class Central201(_Recorder, CP201):
    def __init__(self, cid, ws, central):
        super().__init__(cid, ws, response_timeout=5)
        self.central = central

    @on("BootNotification")
    def on_boot(self, **kw):
        self.record("BootNotification", kw)
        return r201.BootNotification(current_time=now_iso(), interval=self.central.boot_interval(),
                                     status=self.central.boot_status())

    @on("Heartbeat")
    def on_heartbeat(self, **kw):
        self.record("Heartbeat", kw)
        return r201.Heartbeat(current_time=now_iso())

    @on("StatusNotification")
    def on_status(self, **kw):
        self.record("StatusNotification", kw)
        return r201.StatusNotification()

    @on("Authorize")
    def on_authorize(self, **kw):
        self.record("Authorize", kw)
        ok = kw["id_token"]["id_token"] in self.central.tokens
        return r201.Authorize(id_token_info={"status": "Accepted" if ok else "Invalid"})

    @on("TransactionEvent")
    async def on_tx_event(self, **kw):
        self.record("TransactionEvent", kw)
        await self.maybe_hang_up("TransactionEvent")
        if kw.get("id_token"):
            ok = kw["id_token"]["id_token"] in self.central.tokens
            return r201.TransactionEvent(id_token_info={"status": "Accepted" if ok else "Invalid"})
        return r201.TransactionEvent()

    @on("NotifyReport")
    def on_notify_report(self, **kw):
        self.record("NotifyReport", kw)
        return r201.NotifyReport()


class Central:
    """`async with Central(tokens={...}) as cs:` then `cs.url`, `await cs.point("CP1")`."""

    def __init__(self, tokens=(), passwords=None, port: int = 0, ssl=None) -> None:
        self.ssl = ssl
        self.tokens = set(tokens)
        self.fail_actions: set = set()   # actions answered with a CallError
        self.hang_up_on: set = set()     # actions answered by closing the connection (once)
        self.boot_answers: list = []     # statuses to answer boots with first, e.g. ["Pending"]
        self.passwords = passwords      # {station_id: password} or None (no auth)
        self.port = port
        self.received: list = []
        self.changed = asyncio.Event()
        self.points: dict = {}
        self.refused: list = []
        self.tx_ids = itertools.count(100)
        self._server = None

    def boot_status(self) -> str:
        return self.boot_answers.pop(0) if self.boot_answers else "Accepted"

    def boot_interval(self) -> int:
        # Pending/Rejected: the interval is the retry time; keep tests quick.
        return 1 if self.boot_answers else 300

    @property
    def url(self) -> str:
        return "%s://127.0.0.1:%d" % ("wss" if self.ssl else "ws", self.port)

    def _check(self, connection, request):
        cid = request.path.strip("/")
        if self.passwords is None:
            return None
        want = "Basic " + base64.b64encode(
            ("%s:%s" % (cid, self.passwords.get(cid, object()))).encode()).decode()
        if request.headers.get("Authorization") != want:
            self.refused.append(cid)
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "bad credentials\n")
        return None

    async def _handler(self, ws):
        cid = ws.request.path.strip("/")
        cls = Central201 if ws.subprotocol == "ocpp2.0.1" else Central16
        point = cls(cid, ws, self)
        self.points[cid] = point
        self.changed.set()
        try:
            await point.start()
        except Exception:
            pass
        finally:
            if self.points.get(cid) is point:
                del self.points[cid]

    async def start(self) -> "Central":
        self._server = await serve(self._handler, "127.0.0.1", self.port,
                                   subprotocols=["ocpp1.6", "ocpp2.0.1"],
                                   process_request=self._check, compression=None,
                                   ssl=self.ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()
        self.points.clear()

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()

    async def wait_for(self, predicate, what: str, timeout: float = 10.0):
        """Wait until predicate() is truthy (a generous failure timeout, not a speed check)."""
        async def loop():
            while True:
                value = predicate()
                if value:
                    return value
                self.changed.clear()
                await self.changed.wait()
        try:
            return await asyncio.wait_for(loop(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("never happened: %s; received: %r" % (what, self.received[-8:]))

    def calls(self, action: str, station: str | None = None) -> list[dict]:
        return [p for s, a, p in self.received if a == action and station in (None, s)]

    async def point(self, station: str):
        return await self.wait_for(lambda: self.points.get(station), "%s connected" % station)
