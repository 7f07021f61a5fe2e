"""Many simulated wallboxes, and cars that come and go at them."""
from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from .clock import SimClock
from .link import Link
from .model import EV, StationSpec
from .station import Station

log = logging.getLogger(__name__)


@dataclass
class Traffic:
    """Random arrivals over the whole fleet (simulated seconds, seeded by the fleet)."""
    tokens: list[str]
    mean_gap_s: float = 600.0
    need_wh: tuple[float, float] = (5000.0, 40000.0)
    max_current_a: tuple[float, ...] = (10.0, 16.0, 20.0, 32.0)
    phases: tuple[int, ...] = (1, 3, 3, 3)
    stay_s: tuple[float, float] = (3600.0, 8 * 3600.0)
    leave_when_full_share: float = 0.3

    def __post_init__(self) -> None:
        if not self.tokens:
            raise ValueError("tokens: at least one token is needed (got [])")
        if not self.mean_gap_s > 0:
            raise ValueError("mean_gap_s: must be > 0 (got %r)" % (self.mean_gap_s,))


class Fleet:
    def __init__(self, url: str, stations: list[StationSpec], seed: int = 0, clock=None,
                 traffic: Traffic | None = None, reconnect_s: float = 5.0,
                 response_timeout_s: float = 30.0, compression: str | None = None,
                 connect_spread_s: float = 0.0, validate_schema: bool = True,
                 ssl=None) -> None:
        """`validate_schema=False` skips the ocpp library's JSON-schema checks in the
        simulator (both directions) so a load test measures the server, not us."""
        ids = [s.id for s in stations]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError("stations: duplicate ids (got %s)" % ", ".join(dup))
        self.url = url
        self.clock = clock or SimClock()
        self.random = random.Random(seed)
        self.traffic = traffic
        self.connect_spread_s = connect_spread_s
        self.stations = {s.id: Station(s, self.clock) for s in stations}
        self.links = {sid: Link(st, url, reconnect_s, response_timeout_s, compression,
                                validate_schema, random.Random(self.random.random()), ssl)
                      for sid, st in self.stations.items()}
        self._tasks: list[asyncio.Task] = []
        self.arrivals: list[tuple] = []   # (at_s, station, connector, EV) of random arrivals

    async def start(self) -> None:
        """Start connecting every station (returns at once; see `wait_connected`)."""
        if self._tasks:
            raise RuntimeError("fleet: already started")
        n = len(self.links)
        for i, link in enumerate(self.links.values()):
            self._tasks.append(asyncio.ensure_future(self._run_link(link, i, n)))
        if self.traffic is not None:
            self._tasks.append(asyncio.ensure_future(self._arrivals()))

    async def _run_link(self, link: Link, i: int, n: int) -> None:
        if self.connect_spread_s > 0 and n > 1:
            await asyncio.sleep(self.connect_spread_s * i / n)
        await link.run()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        pending = [t for st in self.stations.values() for t in st._tasks]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def __aenter__(self) -> "Fleet":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def wait_connected(self, station_ids=None) -> None:
        """Wait until the named (default: all) stations are booted."""
        ids = station_ids or list(self.links)
        await asyncio.gather(*(self.links[i].connected.wait() for i in ids))

    async def set_network(self, station_id: str, up: bool) -> None:
        """Take one wallbox off the network (it goes on charging offline) or back."""
        self.station(station_id)
        await self.links[station_id].set_reachable(up)

    def station(self, station_id: str) -> Station:
        try:
            return self.stations[station_id]
        except KeyError:
            raise ValueError("station: unknown station %r" % (station_id,)) from None

    async def plug_in(self, station: str, connector: int, id_tag: str | None, need_wh: float,
                      max_current_a: float, phases: int = 3, leave_when_full: bool = False,
                      stay_s: float | None = None) -> bool:
        """An EV arrives; True if its session started (authorized and begun)."""
        ev = EV(id_tag, need_wh, max_current_a, phases, leave_when_full, stay_s)
        return await self.station(station).plug_in(connector, ev)

    def unplug(self, station: str, connector: int) -> None:
        self.station(station).unplug(connector)

    def connector(self, station: str, connector: int):
        conn = self.station(station).connector(connector)
        if conn is None:
            raise ValueError("connector: no connector %r at %s" % (connector, station))
        return conn

    def snapshot(self) -> list[dict]:
        """Per connector: state, limit from profiles, drawn current, energy."""
        rows = []
        for st in self.stations.values():
            for row in st.snapshot():
                row["online"] = st.online
                rows.append(row)
        return rows

    async def _arrivals(self) -> None:
        t, rnd = self.traffic, self.random
        # Cars start coming once the stations are up (or after a minute regardless, so a
        # site whose server is down shows offline charging).
        try:
            await asyncio.wait_for(self.wait_connected(), 60)
        except asyncio.TimeoutError:
            pass
        while True:
            await self.clock.sleep(rnd.expovariate(1.0 / t.mean_gap_s))
            free = [(st.id, c.id) for st in self.stations.values()
                    for c in st.connectors.values() if c.ev is None]
            if not free:
                continue
            sid, cid = rnd.choice(free)
            ev = EV(rnd.choice(t.tokens), round(rnd.uniform(*t.need_wh)),
                    rnd.choice(t.max_current_a), rnd.choice(t.phases),
                    rnd.random() < t.leave_when_full_share, round(rnd.uniform(*t.stay_s)))
            self.arrivals.append((self.clock(), sid, cid, ev))
            self.stations[sid].spawn(self._arrive(sid, cid, ev))

    async def _arrive(self, sid: str, cid: int, ev: EV) -> None:
        try:
            started = await self.stations[sid].plug_in(cid, ev)
            log.info("%s/%d: EV %s arrived, %s", sid, cid, ev.id_tag,
                     "charging" if started else "not authorized")
        except ValueError as e:  # the connector was taken meanwhile
            log.info("%s/%d: arrival skipped: %s", sid, cid, e)
