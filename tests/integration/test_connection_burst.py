"""Hundreds of wallboxes connecting at once do not starve the control loop.

The edge runs here (its own event loop, as in production); the meter is a real Modbus
TCP server and the wallboxes a real OCPP fleet (ocpp library over websockets), each in
its own process so the meter stays healthy whatever the edge's loop does, and the
wallboxes arrive as fast as a real site's would after a power cut. While they connect,
boot, get their settings, profiles and local lists, every control step must see a
fresh meter reading, and the start-up work must go through the gateway's pacer
(edge/ocpp_gateway/pacing.py), a few pieces per loop turn.

On the main branch before the pacer, the busiest loop turn of such a burst accepted
109 to 180 connections, and in one run the control step ran twice in the whole burst;
no step saw a stale meter on that (fast) PC (docs/ocpp.md, "Bursts of wallboxes").
"""
import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from edge import config
from edge.service import EdgeService

ROOT = Path(__file__).resolve().parents[2]
N = 300
PER_TURN = 1


def site(n: int, meter_port: int, store: str) -> dict:
    ids = ["CP%03d" % (i + 1) for i in range(n)]     # the simulator's names
    stations = [{"id": sid, "connectors": [{"id": 1, "phases": 3, "wiring": "L1L2L3",
                                            "min_current_a": 6, "max_current_a": 32}]}
                for sid in ids]
    return {
        "site": {"site_id": "burst", "timezone": "UTC0", "offline_unknown_tokens": "accept",
                 "grid": {"max_current_a": 1000, "safety_margin_a": 1},
                 "charging_groups": [{"id": "all", "name": "All", "stations": stations}]},
        # A fast meter and a tight age limit: the control loop notices a starved loop.
        "load_management": {"meter_max_age_s": 1, "failsafe_non_ev_a": 100},
        "meters": [{"id": "grid", "model": "eastron_sdm630", "host": "127.0.0.1",
                    "port": meter_port, "interval_s": 0.25, "timeout_s": 1.0, "retries": 0,
                    "stale_after_s": 1}],
        "ocpp": {"host": "127.0.0.1", "port": 0, "stations": {sid: {} for sid in ids}},
        "store": {"path": store},
        "control": {"interval_s": 0.25, "grid_meter": "grid"},
    }


def _spawn(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m"] + args, cwd=str(ROOT), text=True,
                            stdout=subprocess.PIPE, stderr=open(log, "w"))


@pytest.fixture
def meter_port(tmp_path):
    p = _spawn(["host_tools.sim_meter", "--model", "eastron_sdm630", "--port", "0",
                "--current", "20"], tmp_path / "meter.log")
    line = p.stdout.readline()      # "simulated eastron_sdm630 on 127.0.0.1:PORT ..."
    try:
        assert " on 127.0.0.1:" in line, (line, (tmp_path / "meter.log").read_text())
        yield int(line.split(" on 127.0.0.1:", 1)[1].split()[0])
    finally:
        p.terminate()
        p.wait(10)


def _pacer_idle(gw) -> bool:
    pacer = getattr(gw, "startup", None)    # a gateway without one has nothing queued
    return pacer is None or pacer.waiting == 0


class TurnWatch:
    """Counts, per event-loop turn, the wallbox connections the edge accepted (from its
    event log): a callback that schedules itself again runs exactly once per turn."""

    def __init__(self, svc: EdgeService) -> None:
        self.svc = svc
        self.busiest = 0
        self.turns = 0
        self._seen = svc.events.seq
        self._on = True
        asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.turns += 1
        seq = self.svc.events.seq
        if seq != self._seen:
            new = self.svc.events.recent(seq - self._seen, after=self._seen)
            connected = sum(1 for e in new if e["kind"] == "station_connected" and e["connected"])
            self.busiest = max(self.busiest, connected)
            self._seen = seq
        if self._on:
            asyncio.get_running_loop().call_soon(self._tick)

    def stop(self) -> None:
        self._on = False


async def test_burst_of_wallboxes_keeps_the_meter_fresh_and_the_site_out_of_failsafe(
        meter_port, tmp_path, until):
    svc = EdgeService(config.from_dict(site(N, meter_port, str(tmp_path / "e.db"))))
    steps = []
    up_too_early = []      # the site counted as up while a wallbox was still starting

    def on_step(s) -> None:
        steps.append((s.last.status["mode"], s.last.status["reason"], s.poller.is_stale("grid")))
        if s.gateway.all_connected() and any(st.link.starting for st in s.gateway.stations.values()):
            up_too_early.append(len(steps))
    svc.on_cycle(on_step)
    await svc.start()
    fleet = None
    try:
        assert await until(lambda: steps and steps[-1][0] == "normal", 15), steps[-3:]
        quiet = len(steps)
        watch = TurnWatch(svc)
        fleet = _spawn(["host_tools.sim_wallbox", "--url", "ws://127.0.0.1:%d" % svc.ocpp_port,
                        "--stations", str(N), "--version", "mixed", "--response-delay-s", "0",
                        "--connect-spread-s", "0", "--lean", "--show-every-s", "0"],
                       tmp_path / "fleet.log")
        stations = svc.gateway.stations.values()

        def all_started() -> bool:
            # booted, and the edge's after-boot work for it (settings, profiles, list) done;
            # frames queued just before a wallbox's start-up ended still go through the pacer
            return all(st.booted and st.link is not None
                       and not getattr(st.link, "starting", False) for st in stations) \
                and _pacer_idle(svc.gateway)
        done = await until(all_started, 120, 0.2)
        watch.stop()
        booted = sum(1 for st in stations if st.booted)
        assert done, "%d of %d booted; fleet: %s" % (booted, N, (tmp_path / "fleet.log").read_text()[-2000:])
        burst = steps[quiet:]
        assert len(burst) >= 3, "the control loop ran %d times during the burst" % len(burst)
        # the point: a healthy meter never looked stale, the site never went fail-safe
        assert not [s for s in burst if s[2]], "meter judged stale during the burst"
        bad = [s for s in burst if s[0] != "normal"]
        assert not bad, "%d of %d steps not normal, e.g. %s" % (len(bad), len(burst), bad[:3])
        # seen from outside the gateway: connections accepted per loop turn (a handshake
        # can end a turn or two after it began)
        assert 0 < watch.busiest <= 3 * PER_TURN, (watch.busiest, watch.turns)
        # ... because the start-up work queued and went a few pieces a turn
        pace = svc.gateway.startup.stats()
        assert pace["per_turn"] == PER_TURN, pace
        assert pace["peak_waiting"] > 10 * PER_TURN, pace      # it was a burst
        assert pace["granted"] >= 5 * N, pace                  # handshake, boot, calls...
        assert pace["busiest_turn"] <= PER_TURN, pace
        assert pace["waiting"] == 0, pace
        # the GC epoch (edge/gc_epochs.py) waits for the site to be up, burst over
        assert svc.gateway.all_connected() and not up_too_early, up_too_early
    finally:
        if fleet is not None:
            fleet.terminate()
            fleet.wait(20)
        await svc.stop()
