"""The connection of one simulated wallbox to its server, kept up for its lifetime.

Connect, boot, announce every connector, then run two loops until the
connection drops: the sender (queued records, in order) and the heartbeat.
Meter sampling belongs to the station and goes on while offline, since the car
keeps charging; what it queues goes out after the next boot.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import random
import ssl as ssl_module

import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ocpp.exceptions import OCPPError

from .station import Station

log = logging.getLogger(__name__)

SUBPROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}


def point_class(version: str):
    if version == "1.6":
        from .v16 import Point16
        return Point16
    from .v201 import Point201
    return Point201


class Link:
    def __init__(self, station: Station, url: str, reconnect_s: float = 5.0,
                 response_timeout_s: float = 30.0, compression: str | None = None,
                 validate_schema: bool = True, rnd: random.Random | None = None,
                 ssl: ssl_module.SSLContext | None = None) -> None:
        self.station = station
        self.url = url.rstrip("/") + "/" + station.id
        self.reconnect_s = reconnect_s
        self.response_timeout_s = response_timeout_s
        self.compression = compression
        self.validate_schema = validate_schema
        self.ssl = ssl   # for wss:// (OCPP security profile 2: TLS plus Basic auth)
        # Jitter, so a fleet does not reconnect in one burst after a server restart
        # (what OCPP 2.0.1 calls RetryBackOffRandomRange).
        self.rnd = rnd or random.Random(0)
        self.boot_reason = "PowerUp"       # 2.0.1 BootNotification reason
        self.reachable = asyncio.Event()   # cleared: the wallbox's network is down
        self.reachable.set()
        self.point = None
        self.connected = asyncio.Event()   # set while booted
        self.boots = 0                     # accepted boots so far
        self.last_error: str | None = None
        self.sent: dict[str, int] = {}     # records delivered, by kind
        self._ws = None
        station.link = self

    async def authorize(self, id_tag: str) -> str:
        if self.point is None:
            raise ConnectionError("not connected")
        return await self.point.send_authorize(id_tag)

    def _headers(self) -> dict:
        spec = self.station.spec
        if spec.password is None:
            return {}
        token = base64.b64encode(("%s:%s" % (spec.id, spec.password)).encode()).decode()
        return {"Authorization": "Basic " + token}

    async def run(self) -> None:
        """Stay connected until cancelled."""
        try:
            while True:
                await self.reachable.wait()
                try:
                    await self._session()
                except (OSError, asyncio.TimeoutError, websockets.ConnectionClosed,
                        InvalidStatus, OCPPError, ConnectionError) as e:
                    self.last_error = "%s: %s" % (type(e).__name__, e)
                    log.info("%s: connection ended: %s", self.station.id, self.last_error)
                except Exception as e:  # e.g. a handshake or boot answer we cannot use
                    self.last_error = "%s: %s" % (type(e).__name__, e)
                    log.warning("%s: connection ended: %s", self.station.id, self.last_error)
                finally:
                    self._offline()
                await asyncio.sleep(self.reconnect_s * self.rnd.uniform(0.5, 1.5))
        finally:
            self._offline()

    def _offline(self) -> None:
        st = self.station
        if st.online or self.point is not None:
            # Statuses not yet sent are stale; the next boot announces every connector.
            kept = [r for r in st.queue if r.kind != "status"]
            st.queue.clear()
            st.queue.extend(kept)
        self.station.online = False
        self.connected.clear()
        self.point = None

    async def drop(self) -> None:
        """Close the connection now (the run loop reconnects after reconnect_s)."""
        if self._ws is not None:
            await self._ws.close()

    async def reboot(self, drain_s: float = 0.0) -> None:
        """Restart after a Reset: give queued messages up to `drain_s` (real seconds) to
        go out, then drop the connection; the run loop boots again."""
        st = self.station
        deadline = asyncio.get_running_loop().time() + drain_s
        while st.queue and st.online and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        self.boot_reason = "RemoteReset"
        await self.drop()

    async def set_reachable(self, up: bool) -> None:
        """Cut (False) or restore (True) the wallbox's network, server left as it is."""
        if up:
            self.reachable.set()
            return
        self.reachable.clear()
        await self.drop()

    async def _session(self) -> None:
        st = self.station
        extra = {"ssl": self.ssl} if self.ssl is not None else {}
        async with connect(self.url, subprotocols=[SUBPROTOCOLS[st.spec.version]],
                           additional_headers=self._headers(), proxy=None,
                           compression=self.compression, open_timeout=10,
                           ping_interval=None, **extra) as ws:
            self._ws = ws
            point = point_class(st.spec.version)(st, ws, self.response_timeout_s,
                                                 self.validate_schema)
            reader = asyncio.ensure_future(point.start())
            tasks = [reader]
            try:
                interval = await self._boot(point, reader)
                self.point = point
                st.online = True
                self.boots += 1
                self.connected.set()
                st.status_all()
                tasks += [asyncio.ensure_future(self._send_loop(point)),
                          asyncio.ensure_future(self._heartbeat_loop(point, interval))]
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # raise what ended it
            finally:
                self._offline()
                for task in tasks:
                    task.cancel()
                self._ws = None

    async def _boot(self, point, reader) -> int:
        while True:
            status, interval = await self._unless_closed(point.send_boot(self.boot_reason),
                                                         reader)
            if status == "Accepted":
                if self.station.spec.heartbeat_s is None and interval > 0:
                    self.station.config["HeartbeatInterval"]["value"] = str(interval)
                return interval
            log.info("%s: boot %s, retrying in %ss", self.station.id, status, interval)
            await self._unless_closed(asyncio.sleep(
                max(1, min(interval or 10, 60)) if status == "Rejected"
                else min(max(interval, 1), 10)), reader)

    @staticmethod
    async def _unless_closed(coro, reader):
        """Await `coro`, but give up as soon as the connection's reader ends (a boot
        sent into a closed connection would otherwise wait for its full timeout)."""
        task = asyncio.ensure_future(coro)
        done, _ = await asyncio.wait({task, reader}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        reader.result()   # raises what closed the connection
        raise ConnectionError("connection closed during boot")

    async def _send_loop(self, point) -> None:
        st = self.station
        while True:
            while not st.queue:
                st.queue_changed.clear()
                await st.queue_changed.wait()
            rec = st.queue[0]
            try:
                await point.send_record(rec)
                self.sent[rec.kind] = self.sent.get(rec.kind, 0) + 1
            except OCPPError as e:
                # The server answered with an error: resending the same frame would
                # get the same answer, so it is dropped rather than blocking the queue.
                log.warning("%s: %s refused by the server: %s", st.id, rec.kind, e)
            except (websockets.ConnectionClosed, asyncio.TimeoutError, OSError):
                raise   # kept in the queue; sent again after the next boot
            except Exception as e:  # an answer we cannot use (lean mode: unchecked)
                log.warning("%s: unusable answer to %s: %r", st.id, rec.kind, e)
            if st.queue and st.queue[0] is rec:
                st.queue.popleft()

    async def _heartbeat_loop(self, point, interval: int) -> None:
        st = self.station
        while True:
            await st.clock.sleep(max(1, st.conf_int("HeartbeatInterval")))
            await point.send_heartbeat()
