"""Meter node: the heap it needs, and the path of one reading from meter to gateway.

- Heap, under MicroPython's WebAssembly build as a stand-in for a board
  (tests/node/measure_memory.py through `node tools/mp/mp.mjs script`): the node's
  modules, umqtt.simple, and a Node for one SDM630. Target: under 100 KB, so that an
  ESP32 without PSRAM (110 KB of MicroPython heap) keeps room for a poll's garbage.
- One SDM630 poll by the node's RTU master (CPython) against a pymodbus RTU server in
  its own process through a pseudo-terminal: 3 requests, no line speed (a real 9600
  baud bus adds about 50 ms per request, docs/meters.md).
- The gateway's side of one reading: msgpack decode, checks, register decode, poller
  update (NodeSource.handle), no broker.
Medians and p99 (nearest rank); no single-run figures.
"""
from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_HEAP_KB = 100


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def _timing_rows(case: str, samples_s: list[float]) -> list[dict]:
    return [{"area": "node", "case": case, "metric": m, "value": round(v * 1000, 3), "unit": "ms",
             "target": None, "ok": None}
            for m, v in (("median", statistics.median(samples_s)), ("p99", _p99(samples_s)))]


def heap_rows(polls: int) -> list[dict]:
    env = dict(os.environ, MP_EXTRA_LIB=str(ROOT / ".venv" / "mp-lib"))
    out = subprocess.run(["node", "tools/mp/mp.mjs", "script", "tests/node/measure_memory.py", str(polls)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    figures = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            figures[parts[0]] = int(parts[1])
    if "with_node_bytes" not in figures:
        raise RuntimeError("measure_memory.py printed no figures: %s %s" % (out.stdout[-300:], out.stderr[-300:]))
    kb = figures["with_node_bytes"] / 1024
    return [
        {"area": "node", "case": "heap: node modules + umqtt.simple + one SDM630 (WebAssembly stand-in)",
         "metric": "allocated", "value": round(kb, 1), "unit": "KB", "target": "< %d KB" % TARGET_HEAP_KB,
         "ok": kb < TARGET_HEAP_KB},
        {"area": "node", "case": "heap: garbage per SDM630 poll (%d polls)" % polls, "metric": "mean",
         "value": round(figures["allocated_per_poll_bytes"] / 1024, 2), "unit": "KB", "target": None, "ok": None},
    ]


def poll_rows(n: int) -> list[dict]:
    from edge.meters.model import load_model
    from edge.node.rtu import RtuMaster
    from host_tools.node_host import FdUart, HostClock
    from tests.meter_node.node_pty import PtyPair

    model = load_model("eastron_sdm630")
    pair = PtyPair()
    script = ("import asyncio, sys\n"
              "from host_tools.sim_meter import SimMeter\n"
              "async def main():\n"
              "    m = SimMeter('eastron_sdm630', device_id=1, framer='rtu', serial_port=sys.argv[1])\n"
              "    await m.start(); print('ready', flush=True); await asyncio.Event().wait()\n"
              "asyncio.run(main())\n")
    proc = subprocess.Popen([sys.executable, "-c", script, pair.slave_path], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        if "ready" not in proc.stdout.readline():
            raise RuntimeError("simulated RTU meter did not start")
        master = RtuMaster(FdUart(pair.master_fd), HostClock, timeout_ms=1000)
        blocks = model.read_blocks(0)
        samples = []
        for i in range(n + 20):
            t0 = time.perf_counter()
            for address, count in blocks:
                master.read(1, 4, address, count)
            if i >= 20:
                samples.append(time.perf_counter() - t0)
        return _timing_rows("node RTU master: SDM630 poll over a pty (3 requests, CPython)", samples)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        pair.close()


def gateway_rows(n: int) -> list[dict]:
    from edge.meters.config import parse_meters
    from edge.meters.model import load_model
    from edge.meters.node_source import NodeBrokerConfig, NodeSource
    from edge.meters.poller import MeterPoller
    from edge.node import messages
    from edge.node.msgpack_encode import pack

    meters = parse_meters([{"id": "grid", "model": "eastron_sdm630", "source": "node", "node": "n1"}])
    poller = MeterPoller(meters, clock=time.time)
    src = NodeSource(NodeBrokerConfig(), meters, poller)
    blocks = [[a, [0x4366] * c] for a, c in load_model("eastron_sdm630").read_blocks(0)]
    payloads = [pack(messages.reading("n1", i, 1, "eastron_sdm630", 2, 40, blocks)) for i in range(n)]
    samples = []
    for i, p in enumerate(payloads):
        t0 = time.perf_counter()
        src.handle("nodes/n1/reading", p, 1000.0 + i)
        samples.append(time.perf_counter() - t0)
    if poller.latest("grid") is None:
        raise RuntimeError("no reading came through")
    return _timing_rows("gateway: one node reading checked, decoded, in the poller", samples)


def run(quick: bool = False) -> list[dict]:
    return heap_rows(50 if quick else 200) + poll_rows(100 if quick else 1000) + gateway_rows(
        500 if quick else 5000)


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
