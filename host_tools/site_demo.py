"""`make run`: a whole simulated site on this machine, shown live.

Real parts, all on loopback: a Mosquitto broker, the cloud peer on it, a Modbus TCP
grid meter (pymodbus) whose readings are the building's load plus what the simulated
cars draw, six OCPP wallboxes (1.6J and 2.0.1) and the edge service itself. A short
script of arrivals, a blocked card, an ad hoc start paid in the cloud and a grid
operator's curtailment runs first; then cars keep coming and going.

    python -m host_tools.site_demo [--duration S] [--seed N] [--plain]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

from edge import config
from edge.service import EdgeService
from host_tools import demo_site
from host_tools.broker import Broker
from host_tools.cloud_peer import CloudPeer
from host_tools.demo_display import render
from host_tools.sim_meter import SimMeter
from host_tools.wallbox_sim.fleet import Fleet
from host_tools.wallbox_sim.model import ConnectorSpec, StationSpec

BUILDING_A = (9.0, 6.0, 12.0)       # base non-EV load per site phase
VOLTAGE_V = 230.0


class Demo:
    def __init__(self, seed: int, response_delay_s: float) -> None:
        self.rnd = random.Random(seed)
        self.events: list[str] = []
        self.t0 = time.time()
        self.response_delay_s = response_delay_s
        self.energy_wh = 0.0
        self.energy_at = time.time()
        self.worst_over_da = [0, 0, 0]      # largest grid current above the limit seen, per phase

    def observe(self, status: dict) -> None:
        """What the summary at the end reports: overshoots of the limit (per phase)."""
        for n, p in enumerate(status["phases"]):
            if p["grid_da"] is not None and p["grid_da"] - p["limit_da"] > self.worst_over_da[n]:
                self.worst_over_da[n] = p["grid_da"] - p["limit_da"]

    def summary(self, n_sessions: int, energy_wh: int, pending: int) -> str:
        over = ", ".join("L%d +%.1f A" % (n + 1, d / 10) for n, d in enumerate(self.worst_over_da) if d > 0)
        return ("summary after %ds: %d sessions recorded at the edge, %.1f kWh delivered\n"
                "largest limit overshoot seen: %s\n"
                "cloud received %d records (%d duplicates dropped); %d still queued at the edge"
                % (time.time() - self.t0, n_sessions, energy_wh / 1000, over or "none",
                   self.peer.record_count(demo_site.SITE_ID), self.peer.duplicates, pending))

    def note(self, text: str) -> None:
        self.events.append("%5.1fs  %s" % (time.time() - self.t0, text))

    # -- the meter sees the building plus the cars -------------------------------------
    def meter_values(self) -> dict:
        t = time.time() - self.t0
        swing = 1.0 + 0.35 * __import__("math").sin(t / 20.0)
        phase = [a * swing for a in BUILDING_A]
        for row in self.fleet.snapshot():
            drawn, n = row["drawn_a"], row["phases"]
            if not drawn or not n:
                continue
            wiring = self.cfg.site.connector(row["station"], row["connector"]).wiring
            for p in wiring[:n]:
                phase[p] += drawn
        currents = [round(a, 2) for a in phase]
        powers = [round(a * VOLTAGE_V, 1) for a in currents]
        now = time.time()
        self.energy_wh += sum(powers) * (now - self.energy_at) / 3600.0
        self.energy_at = now
        return {"voltage_v": [VOLTAGE_V] * 3, "current_a": currents, "phase_power_w": powers,
                "power_w": round(sum(powers), 1), "import_wh": round(self.energy_wh), "export_wh": 0}

    async def start(self, workdir: Path) -> None:
        self.broker = Broker(workdir=str(workdir / "mosquitto")).start()
        self.meter = SimMeter("eastron_sdm630", values_provider=self.meter_values)
        meter_port = await self.meter.start()
        self.peer = CloudPeer(port=self.broker.port, client_id="demo-cloud", on_event=self._cloud_event)
        # The cloud as roaming hub: partner tokens no list holds, authorized online.
        self.peer.serve_snapshot[demo_site.SITE_ID] = demo_site.cloud_snapshot()
        for uid, provider in demo_site.ROAMING.items():
            self.peer.roaming[uid] = {"provider": provider, "valid_s": 3600}
        self.peer.start()
        self.cfg = config.from_dict(demo_site.site_config(meter_port, self.broker.port,
                                                          str(workdir / "edge.db")))
        self.service = EdgeService(self.cfg)
        await self.service.start()
        url = "ws://127.0.0.1:%d" % self.service.ocpp_port
        specs = []
        for _, sid, version, conns in demo_site.STATIONS:
            specs.append(StationSpec(id=sid, version=version, password=demo_site.PASSWORD,
                                     connectors=[ConnectorSpec(c["phases"], c["max_current_a"]) for c in conns],
                                     meter_interval_s=5, response_delay_s=self.response_delay_s))
        self.fleet = Fleet(url, specs, seed=self.rnd.randrange(1 << 30))
        await self.fleet.start()
        await asyncio.wait_for(self.fleet.wait_connected(), 30)
        self.note("site up: broker :%d, meter :%d, OCPP :%d, %d wallboxes booted"
                  % (self.broker.port, meter_port, self.service.ocpp_port, len(specs)))

    def _cloud_event(self, site: str, msg_type: str, body: dict) -> None:
        # The cloud's side of the protocol: an edge without (valid) lists asks for a
        # snapshot. Runs in paho's thread, so no waiting for the PUBACK here.
        if msg_type == "snapshot_request":
            self.peer.send(site, "snapshot", demo_site.cloud_snapshot(), "lists", wait=False)
            self.note("the edge asked for the lists (%s); the cloud sent snapshot v1" % body.get("reason"))
        elif msg_type == "command_reply":
            self.note("edge replied to %s: %s (%s)" % (body.get("command"), body.get("status"), body.get("reason")))

    async def stop(self) -> None:
        await self.fleet.stop()
        await self.service.stop()
        await self.meter.stop()
        self.peer.stop()
        self.broker.stop()

    async def arrive(self, station: str, token: str | None, need_wh: float, max_a: float, phases: int) -> bool:
        ok = await self.fleet.plug_in(station, 1, token, need_wh, max_a, phases=phases)
        if ok:
            outcome = "charging"
        else:
            # The same decision the edge gave the wallbox, for the reason code.
            outcome = "REFUSED: %s" % (await self.service.authorizer.authorize(token, station, 1)).reason
        self.note("%s plugs in at %s: %s" % (token or "a guest", station, outcome))
        if not ok:
            self.fleet.unplug(station, 1)
        return ok

    async def script(self) -> None:
        steps = [
            (2, self.arrive("CP001", "FLEET01", 40000, 16, 3)),
            (4, self.arrive("CP003", "STAFF01", 30000, 16, 3)),
            (6, self.arrive("CP005", "CARD01", 15000, 32, 1)),
            (8, self.arrive("CP004", "STAFF02", 20000, 32, 1)),
            (10, self.arrive("CP002", "CARD99", 20000, 16, 3)),
            (12, self.arrive("CP002", "FLEET02", 50000, 16, 3)),
            (3, self.roam("CP006", 8)),
            (14, self.ad_hoc("CP006")),
            (24, self.curtail(200, 20)),
        ]
        n = 0
        try:
            for n, (at, coro) in enumerate(steps):
                await asyncio.sleep(max(0.0, self.t0 + at - time.time()))
                await coro
        finally:
            for _, coro in steps[n:]:
                coro.close()    # stopped early (Ctrl-C): the rest never runs, and says nothing

    async def roam(self, station: str, stay_s: float) -> bool:
        """A partner provider's customer, in no list: the edge asks the cloud online."""
        token = sorted(demo_site.ROAMING)[0]
        ok = await self.fleet.plug_in(station, 1, token, 8000, 32, phases=3, stay_s=stay_s)
        self.note("%s (%s customer) plugs in at %s: %s" % (
            token, demo_site.ROAMING[token], station,
            "charging, authorized online by the cloud" if ok else "REFUSED"))
        if not ok:
            self.fleet.unplug(station, 1)
        return ok

    async def ad_hoc(self, station: str) -> None:
        await self.fleet.plug_in(station, 1, None, 25000, 32, phases=3)
        self.note("guest at %s pays in the app; the cloud sends a remote start" % station)
        self.peer.remote_start(demo_site.SITE_ID, "pay-%d" % self.rnd.randrange(10**6), station, 1,
                               "pi_demo_%d" % self.rnd.randrange(10**6), "g-adhoc")

    async def curtail(self, max_da: int, seconds: int) -> None:
        self.peer.site_limit(demo_site.SITE_ID, "lim-1", "dso-1", max_da, int(time.time()) + seconds)
        self.note("grid operator caps the site at %d A for %d s" % (max_da // 10, seconds))

    async def traffic(self) -> None:
        tokens = ["FLEET01", "FLEET02", "STAFF01", "STAFF02", "CARD01"]
        while True:
            await asyncio.sleep(20)
            busy = [r for r in self.fleet.snapshot() if r["id_tag"] and r["station"] != "CP006"]
            if busy:
                row = self.rnd.choice(busy)
                self.fleet.unplug(row["station"], row["connector"])
                self.note("%s leaves %s after %d Wh" % (row["id_tag"], row["station"], row["session_wh"]))
            await asyncio.sleep(3)
            in_use = {r["id_tag"] for r in self.fleet.snapshot() if r["id_tag"]}
            free = [r["station"] for r in self.fleet.snapshot() if not r["id_tag"] and r["station"] != "CP006"]
            left = [t for t in tokens if t not in in_use]
            if free and left:
                sid = self.rnd.choice(free)
                phases = self.cfg.site.connector(sid, 1).phases
                await self.arrive(sid, self.rnd.choice(left), self.rnd.randrange(5000, 40000), 16, phases)


async def run(duration_s: float, seed: int, plain: bool, response_delay_s: float) -> int:
    demo = Demo(seed, response_delay_s)
    # Ctrl-C ends the run like --duration does, so the site shuts down cleanly and the
    # summary is printed.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, stop.set)
    except (NotImplementedError, RuntimeError):
        pass
    with tempfile.TemporaryDirectory(prefix="edge-demo-") as tmp:
        await demo.start(Path(tmp))
        tasks = [asyncio.ensure_future(demo.script()), asyncio.ensure_future(demo.traffic())]
        try:
            end = time.time() + duration_s if duration_s > 0 else float("inf")
            shown = 0.0
            while time.time() < end and not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), 0.5)
                except asyncio.TimeoutError:
                    pass
                if time.time() - shown >= (1.0 if not plain else 5.0):
                    shown = time.time()
                    screen = render(demo)
                    sys.stdout.write(("" if plain else "\x1b[H\x1b[2J") + screen + "\n")
                    sys.stdout.flush()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            n_sessions, energy_wh = demo.service.conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(energy_wh), 0) FROM sessions").fetchone()
            pending = demo.service.outbox.count()
            text = demo.summary(n_sessions, energy_wh, pending)
            await demo.stop()
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run a whole simulated charging site and show the allocation live")
    ap.add_argument("--duration", type=float, default=0, help="seconds to run (default: until Ctrl-C)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plain", action="store_true", help="no screen clearing; a table every 5 s (for logs)")
    ap.add_argument("--ev-delay", type=float, default=2.0, help="seconds a car takes to follow a new limit")
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args(argv)
    if args.duration < 0:
        ap.error("--duration must be 0 (forever) or more")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(run(args.duration, args.seed, args.plain, args.ev_delay))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
