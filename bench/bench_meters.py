"""Meters: one meter read round trip against a local pymodbus server.

The simulated meters run in their own process (``python -m host_tools.sim_meter``)
so client and server do not share one event loop. Cases:
- a full poll of an Eastron SDM630 over Modbus TCP (3 requests, decode included);
- the same over RTU-over-TCP framing (CRC on both sides);
- a SunSpec 203 meter (one 52-register request after discovery);
- one raw 18-register request (the transport alone);
- decoding alone (no I/O).
Medians and p99 (nearest rank) over many reads; no single-run figures.
"""

from __future__ import annotations

import asyncio
import math
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from edge.meters import MeterConfig, MeterPoller, load_model
from edge.meters.decoder import WrapTracker, decode_reading
from edge.meters.transport import quiet_pymodbus_logging

ROOT = Path(__file__).resolve().parent.parent
TARGET_POLL = "< 20 ms"


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def _start_sim(model: str, framer: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "host_tools.sim_meter", "--model", model, "--port", str(port),
         "--framer", framer, "--current", "16,12.5,8", "--import-wh", "123456"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()  # printed once the server listens
    if "simulated" not in line:
        proc.kill()
        raise RuntimeError("simulator did not start: %r" % line)
    return proc, port


def _rows(case: str, samples_s: list[float], target: str | None) -> list[dict]:
    med = statistics.median(samples_s) * 1000
    p99 = _p99(samples_s) * 1000
    limit = float(target.split()[1]) if target else None
    return [
        {"area": "meters", "case": case, "metric": "median", "value": round(med, 3),
         "unit": "ms", "target": target, "ok": None if limit is None else med < limit},
        {"area": "meters", "case": case, "metric": "p99", "value": round(p99, 3),
         "unit": "ms", "target": target, "ok": None if limit is None else p99 < limit},
    ]


async def _poll_samples(model: str, framer: str, n: int) -> list[float]:
    proc, port = _start_sim(model, framer)
    try:
        cfg = MeterConfig.from_dict({"id": "bench", "model": model, "host": "127.0.0.1",
                                     "port": port, "timeout_s": 1.0, "retries": 0,
                                     "transport": "tcp" if framer == "socket" else "rtu_over_tcp"})
        poller = MeterPoller([cfg])
        for _ in range(20):  # connect, SunSpec discovery, warm caches
            if await poller.poll_once("bench") is None:
                raise RuntimeError(poller.status("bench")["last_error"])
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            reading = await poller.poll_once("bench")
            samples.append(time.perf_counter() - t0)
            if reading is None:
                raise RuntimeError(poller.status("bench")["last_error"])
        await poller.stop()
        return samples
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def _raw_samples(n: int) -> list[float]:
    from edge.meters.transport import ModbusLink
    proc, port = _start_sim("eastron_sdm630", "socket")
    try:
        link = ModbusLink("tcp", host="127.0.0.1", port=port, timeout_s=1.0)
        for _ in range(20):
            await link.read(4, 0, 18, 1)
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            await link.read(4, 0, 18, 1)
            samples.append(time.perf_counter() - t0)
        link.close()
        return samples
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _decode_samples(n: int) -> list[float]:
    model = load_model("eastron_sdm630")
    registers = {a: 0x4366 if a % 2 == 0 else 0 for start, c in model.read_blocks()
                 for a in range(start, start + c)}
    wraps = WrapTracker()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        decode_reading(model, registers, meter_id="m", at_s=0.0, wraps=wraps)
        samples.append(time.perf_counter() - t0)
    return samples


def run(quick: bool = False) -> list[dict]:
    quiet_pymodbus_logging()
    n = 200 if quick else 2000
    rows: list[dict] = []
    rows += _rows("SDM630 poll, Modbus TCP (3 requests + decode)",
                  asyncio.run(_poll_samples("eastron_sdm630", "socket", n)), TARGET_POLL)
    rows += _rows("SDM630 poll, RTU over TCP (3 requests + decode)",
                  asyncio.run(_poll_samples("eastron_sdm630", "rtu", n)), TARGET_POLL)
    rows += _rows("SunSpec 203 poll, Modbus TCP (1 request + decode)",
                  asyncio.run(_poll_samples("sunspec_meter", "socket", n)), TARGET_POLL)
    rows += _rows("one 18-register request, Modbus TCP", asyncio.run(_raw_samples(n)), None)
    rows += _rows("decode SDM630 registers (no I/O)", _decode_samples(n * 5), None)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print("%-52s %-7s %10.3f %s  target %s ok %s" % (
            row["case"], row["metric"], row["value"], row["unit"], row["target"], row["ok"]))
