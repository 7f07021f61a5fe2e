"""Upstream bytes a site sends per day: a simulated day, through a real Mosquitto.

The edge side is the production path from the allocation on: the allocation core every
10 s (the telemetry sampling period), ``telemetry_sample`` and ``CloudLink`` with its
status and telemetry streams, sessions recorded by the real ``SessionStore`` into the
outbox and sent as ``records``, acknowledged by the reference cloud peer. The link talks
to the broker through a counting TCP proxy, so every byte the edge writes (MQTT headers,
topics, PUBACKs for the cloud's acks included) is counted and split per packet type and
topic. Time is an injected clock driven through the day event by event, so a day takes
seconds. What the simulation cannot run in fast time, MQTT keepalive pings (paho's own
timer), is added from the configured keepalive: one 2-byte PINGREQ per silent interval,
counted as if the link were silent all day (an upper bound).

The site: N wallboxes (3-phase, 6-16 A) behind a 100 A grid connection; the building
draws 15 to 40 A over the day plus three loads of 3 to 8 A that switch on and off every
10 to 60 minutes, and +-1 A of noise. Idle: no car all day. Busy: every wallbox gets one
car an hour (arrives in the first 15 minutes, charges 15 to 30 minutes following its
limit, tapering in the last 10, stays up to 10 minutes more; status Preparing, Charging,
SuspendedEV, Finishing, Available; a session record at its start and at its end).
Cars report their current every 60 s (OCPP MeterValues). n days with different seeds.
"""
from __future__ import annotations

import asyncio
import heapq
import math
import random
import statistics
import tempfile
from collections import Counter
from pathlib import Path

from edge.cloud.mqtt_config import LinkConfig
from edge.cloud.mqtt_link import CloudLink
from edge.cloud.upstream import telemetry_sample
from edge.core.allocation import allocate
from edge.core.alloc_state import AllocState
from edge.core.circuits import circuits_from_site
from edge.core.tariff import session_cost
from edge.core.topology import Site
from edge.lists_holder import ListsHolder
from edge.meters.reading import MeterReading
from edge.store.db import open_db
from edge.store.lists import ListsStore
from edge.store.outbox import Outbox
from edge.store.sessions import SessionStore
from host_tools.broker import Broker, free_port
from host_tools.cloud_peer import CloudPeer

SITE_ID = "bench"
DAY_S = 86400
SAMPLE_S = 10
CAR_REPORT_S = 60
TARGET_IDLE_B = 10_000
T0 = 1_764_892_800          # a midnight, UTC
TARIFF = {"currency": "EUR", "energy_m_per_kwh": 350, "parking": None, "monthly_base_m": 0}
PACKET_NAMES = {1: "connect", 3: "publish", 4: "puback", 8: "subscribe", 12: "pingreq",
                14: "disconnect"}


def site_dict(n: int) -> dict:
    return {"site_id": SITE_ID, "timezone": "CET-1CEST,M3.5.0,M10.5.0/3",
            "grid": {"max_current_a": 100, "max_power_w": None, "safety_margin_a": 2},
            "offline_unknown_tokens": "deny",
            "charging_groups": [{"id": "garage", "name": "Garage", "max_current_a": 100,
                                 "stations": [{"id": "CP%03d" % i, "max_current_a": 16, "connectors": [
                                     {"id": 1, "phases": 3, "wiring": "L1L2L3", "min_current_a": 6,
                                      "max_current_a": 16, "can_switch_phases": False}]}
                                     for i in range(1, n + 1)]}]}


class MqttTally:
    """One direction of an MQTT byte stream, split into packets: bytes and counts per
    packet type, PUBLISH per last topic segment."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.bytes = 0
        self.by_kind: Counter = Counter()
        self.packets: Counter = Counter()

    def feed(self, data: bytes) -> None:
        self.bytes += len(data)
        self.buf += data
        while len(self.buf) >= 2:
            length, mult, i = 0, 1, 1
            while True:
                if i >= len(self.buf):
                    return
                b = self.buf[i]
                length += (b & 127) * mult
                mult *= 128
                i += 1
                if not b & 128:
                    break
            total = i + length
            if len(self.buf) < total:
                return
            ptype = self.buf[0] >> 4
            kind = PACKET_NAMES.get(ptype, "type%d" % ptype)
            if ptype == 3:
                tlen = int.from_bytes(self.buf[i:i + 2], "big")
                kind = "publish " + bytes(self.buf[i + 2:i + 2 + tlen]).decode().rsplit("/", 1)[-1]
            self.by_kind[kind] += total
            self.packets[kind] += 1
            del self.buf[:total]


class CountingProxy:
    """TCP proxy edge -> broker that tallies what the edge writes."""

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.up = MqttTally()
        self.port = 0
        self._server = None

    async def start(self) -> "CountingProxy":
        self.port = free_port()
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _client(self, reader, writer) -> None:
        b_reader, b_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)

        async def pipe(src, dst, tally):
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    if tally is not None:
                        tally.feed(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(pipe(reader, b_writer, self.up), pipe(b_reader, writer, None))
        except asyncio.CancelledError:
            pass                # the proxy is closing at the end of a run


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Day:
    """The simulated site's state: building, cars, sessions, and the events to come."""

    def __init__(self, n: int, busy: bool, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.n = n
        self.events: list = []          # (t, seq, kind, station, data)
        self._seq = 0
        self.loads = [[self.rnd.randrange(30, 80), False, T0 + self.rnd.randrange(600, 3600)]
                      for _ in range(3)]
        self.noise = 0
        self.cars: dict = {}            # station -> car dict while plugged in
        if busy:
            for i in range(1, n + 1):
                for hour in range(24):
                    self._plan_car("CP%03d" % i, T0 + hour * 3600)

    def _push(self, t: float, kind: str, station: str, data=None) -> None:
        self._seq += 1
        heapq.heappush(self.events, (t, self._seq, kind, station, data))

    def _plan_car(self, station: str, hour_s: int) -> None:
        arrive = hour_s + self.rnd.randrange(0, 900)
        charge = self.rnd.randrange(900, 1800)
        stay = charge + self.rnd.randrange(60, 600)
        self._push(arrive, "arrive", station, (charge, stay))

    def building_da(self, t: float) -> list:
        h = ((t - T0) % DAY_S) / 3600.0
        base = 150 + 250 * max(0.0, math.sin(math.pi * (h - 6) / 14)) if 6 <= h <= 20 else 150
        for load in self.loads:
            if t >= load[2]:
                load[1] = not load[1]
                load[2] = t + self.rnd.randrange(600, 3600)
        self.noise = max(-10, min(10, self.noise + self.rnd.randrange(-3, 4)))
        extra = sum(load[0] for load in self.loads if load[1])
        return [int(base + extra + self.noise + d) for d in (0, -20, 15)]


async def _drained(outbox: Outbox, guard_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + guard_s
    while outbox.count():
        if loop.time() > end:
            raise TimeoutError("records not acknowledged within %.0f s" % guard_s)
        await asyncio.sleep(0.001)


def _entry(station: str, status: str) -> dict:
    return {"id": station, "connected": True, "protocol": "ocpp1.6",
            "connectors": [{"id": 1, "status": status, "error": None}]}


async def one_day(n: int, busy: bool, seed: int, workdir: Path) -> dict:
    broker = Broker(workdir=str(workdir / "broker")).start()
    proxy = await CountingProxy(broker.port).start()
    peer = CloudPeer(port=broker.port).start()
    conn = open_db(workdir / "edge.db")
    clock = Clock(float(T0))
    cfg = LinkConfig(port=proxy.port)
    try:
        site = Site.from_dict(site_dict(n))
        tree = circuits_from_site(site)
        outbox = Outbox(conn, clock=clock)
        sessions = SessionStore(conn, outbox=outbox, clock=clock)
        link = CloudLink(cfg, SITE_ID, ListsHolder(site), outbox, ListsStore(conn), clock=clock)
        stations = ["CP%03d" % i for i in range(1, n + 1)]
        link.publish_status([_entry(s, "Available") for s in stations])
        await link.start()
        while not link.online:
            await asyncio.sleep(0.005)
        day = Day(n, busy, seed)
        state = AllocState()
        limits: dict = {}
        end = T0 + DAY_S
        next_sample = float(T0)
        while True:
            due = link.status_stream.due_at()
            t = min(next_sample, day.events[0][0] if day.events else math.inf,
                    due if due is not None and due > clock.t else math.inf)
            if t >= end:
                break
            clock.t = t
            records = False
            while day.events and day.events[0][0] <= t:
                _, _, kind, station, data = heapq.heappop(day.events)
                records |= _event(day, sessions, link, kind, station, data, t)
            if t == next_sample:
                next_sample += SAMPLE_S
                live = _live(day, limits, t)
                grid = day.building_da(t)
                for s in live:
                    if s["drawn_da"]:
                        grid = [g + d for g, d in zip(grid, s["drawn_da"])]
                meter = MeterReading("grid", "sim", t, tuple(grid), (2300,) * 3, (0,) * 3, 0, 0, 0)
                result = allocate(tree, live, meter, t, state, None, None)
                state, limits = result.state, result.limits
                link.publish_telemetry(telemetry_sample(result, meter, live))
                await asyncio.sleep(0)
            link.flush_upstream()
            if records:
                link.notify_outbox()
                await _drained(outbox)
        clock.t = end
        link.flush_upstream()
        await _drained(outbox)
        # Everything published has reached the cloud (and no gap in its views).
        ok = await asyncio.to_thread(peer.wait_for, lambda p: (
            p.status.get(SITE_ID, {}).get("seq") == link.status_stream.seq
            and p.telemetry and p.telemetry[-1]["seq"] == link.telemetry_stream.seq), 30)
        await asyncio.sleep(0.3)        # the last PUBACKs from the edge
        tally = proxy.up
        out = {"bytes": tally.bytes, "by_kind": dict(tally.by_kind), "packets": dict(tally.packets),
               "complete": ok and peer.gaps == 0 and not peer.refused,
               "keepalive_bytes": 2 * DAY_S // cfg.keepalive_s,
               "sessions": conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]}
        await link.stop()
        return out
    finally:
        peer.stop()
        await proxy.stop()
        conn.close()
        broker.cleanup()


def _event(day: Day, sessions: SessionStore, link: CloudLink, kind: str, station: str,
           data, t: float) -> bool:
    """One car event; True when it recorded a session start or stop."""
    now = int(t)
    if kind == "arrive":
        charge, stay = data
        day.cars[station] = {"session": None, "drawn": None, "drawn_at": None,
                             "charge_end": t + 10 + charge, "meter_wh": 0, "arrived": now}
        link.station_changed(_entry(station, "Preparing"))
        day._push(t + 10, "start", station)
        day._push(t + 10 + charge, "full", station)
        day._push(t + stay, "leave", station)
        return False
    if kind == "available":
        link.station_changed(_entry(station, "Available"))
        return False
    car = day.cars[station]
    if kind == "start":
        rec, _ = sessions.start(station, 1, None, "04A1B2C3D4", car["meter_wh"], now,
                                group_id="g-staff", tariff=TARIFF)
        car["session"] = rec["session_id"]
        link.station_changed(_entry(station, "Charging"))
        return True
    if kind == "full":
        link.station_changed(_entry(station, "SuspendedEV"))
        return False
    if kind == "leave":
        link.station_changed(_entry(station, "Finishing"))
        plugged = now - car["arrived"]
        sessions.stop(car["session"], now, car["meter_wh"], "EVDisconnected",
                      cost_fn=lambda rec: session_cost(TARIFF, rec.get("energy_wh") or 0, plugged))
        del day.cars[station]
        day._push(t + 5, "available", station)
        return True
    raise ValueError("unknown car event %r" % kind)


def _live(day: Day, limits: dict, t: float) -> list:
    """The gateway's live sessions: each car reports what it draws every 60 s."""
    out = []
    for station, car in day.cars.items():
        if car["session"] is None:
            continue
        if car["drawn_at"] is None or t - car["drawn_at"] >= CAR_REPORT_S:
            limit = limits.get((station, 1), (0, 3))[0]
            left = car["charge_end"] - t
            want = 0 if left <= 0 else min(160, limit, int(160 * min(1.0, left / 600.0)))
            car["drawn"] = None if want <= 0 else [max(0, want - day.rnd.randrange(0, 6))
                                                    for _ in range(3)]
            car["meter_wh"] += int(sum(car["drawn"] or (0,)) * 23 * CAR_REPORT_S / 3600)
            car["drawn_at"] = t
        out.append({"key": (station, 1), "session_id": car["session"], "group_id": "g-staff",
                    "prioritised": False, "started_s": car["arrived"], "drawn_da": car["drawn"],
                    "drawn_at_s": car["drawn_at"], "phases": 3, "controllable": True})
    return out


def _run_days(n: int, busy: bool, days: int) -> list:
    out = []
    for seed in range(days):
        with tempfile.TemporaryDirectory(prefix="bench-upstream-") as tmp:
            out.append(asyncio.run(one_day(n, busy, seed + 1, Path(tmp))))
    return out


def run(quick: bool = False) -> list:
    import os
    n = 20
    days = 1 if quick else 3
    rows = []
    load = os.getloadavg()[0]
    for busy in (False, True):
        case = "%d wallboxes, %s, n=%d days, load %.1f" % (
            n, "one session an hour each" if busy else "idle", days, load)
        results = _run_days(n, busy, days)
        totals = [(r["bytes"] + r["keepalive_bytes"]) / n for r in results]
        rows.append({"area": "upstream", "case": case, "metric": "bytes per wallbox per day, median",
                     "value": statistics.median(totals), "unit": "B",
                     "target": "< %d B" % TARGET_IDLE_B if not busy else None,
                     "ok": (statistics.median(totals) < TARGET_IDLE_B
                            and all(r["complete"] for r in results)) if not busy else None,
                     "max": max(totals), "n": days, "load_1m": load,
                     "keepalive_per_wallbox": results[0]["keepalive_bytes"] / n,
                     "sessions_per_day": statistics.median(r["sessions"] for r in results)})
        kinds = Counter()
        packets = Counter()
        for r in results:
            kinds.update(r["by_kind"])
            packets.update(r["packets"])
        rows.append({"area": "upstream", "case": case, "metric": "bytes per wallbox per day, max",
                     "value": max(totals), "unit": "B"})
        for kind in sorted(kinds):
            rows.append({"area": "upstream", "case": case,
                         "metric": "%s: bytes per site per day (%d packets)"
                                   % (kind, round(packets[kind] / days)),
                         "value": kinds[kind] / days, "unit": "B"})
        rows.append({"area": "upstream", "case": case,
                     "metric": "pingreq (computed from keepalive %d s): bytes per site per day"
                               % LinkConfig().keepalive_s,
                     "value": results[0]["keepalive_bytes"], "unit": "B"})
        rows.append({"area": "upstream", "case": case,
                     "metric": "all delivered, no gap in the cloud's view",
                     "value": "yes" if all(r["complete"] for r in results) else "no", "unit": "",
                     "ok": all(r["complete"] for r in results)})
    return rows


if __name__ == "__main__":
    import json
    for row in run(quick=True):
        print(json.dumps(row, default=str))
