"""Connection burst: N wallboxes connect within a few seconds while the meter is healthy.

Three processes besides this one, so each side has its own event loop and the edge's
CPU can be read from /proc:

* ``python -m host_tools.sim_meter --port 0``: a real Modbus TCP meter (pymodbus)
  answering at once with a constant building load: a healthy meter;
* ``python -m bench.bench_burst edge CONFIG``: the whole edge service (EdgeService:
  store, gateway, poller, control loop) on a site of N stations, polling the meter every
  250 ms with a meter age limit of 1 s; it reports every control step (when, mode, age
  of the meter reading, how many wallboxes are through their start-up) as a JSON line;
* ``python -m host_tools.sim_wallbox --connect-spread-s S --lean``: N simulated
  wallboxes (OCPP 1.6 and 2.0.1 alternating) connecting within S seconds, each booting,
  announcing its connector and getting its settings, profiles and local list.

Cases: 500 wallboxes within 5 s (the target), all at once, and within 5 s with the edge
pinned to one core beside three busy loops (a gateway CPU about 4 times slower than
the machine's; the scheduler's time slices add some latency a slow CPU would not).

Measured from the first connection until every wallbox is through its start-up (booted,
after-boot sequence and list push done; a gateway without the pacer has no such mark,
there it is the last boot), plus a few quiet control periods: the time the
allocation spent in fail-safe (target 0 on a healthy meter), the control period
(median, p95, max; target: within 20 % of the configured period), the oldest meter
reading a step used, the edge's CPU, its event-loop lag and GC pauses (for context),
and what the gateway's start-up pacer (edge/ocpp_gateway/pacing.py) saw.
"""
from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_ocpp import _cpu_ticks, _emit, _loop_lag, _Proc, percentile

ROOT = Path(__file__).resolve().parent.parent
AREA = "ocpp burst"
CONTROL_INTERVAL_S = 0.25
METER_INTERVAL_S = 0.25
METER_MAX_AGE_S = 1
TOLERANCE = 0.20          # the control period may stretch by this share at most
BASELINE_S = 3.0          # quiet control periods before the burst (for comparison)
QUIET_AFTER_S = 2.0       # and after it


def station_ids(n: int) -> list[str]:
    """The simulator's names (host_tools.sim_wallbox.build_specs)."""
    width = max(3, len(str(n)))
    return ["CP%0*d" % (width, i + 1) for i in range(n)]


def edge_config(n: int, meter_port: int, store: str) -> dict:
    stations = [{"id": sid, "max_current_a": 32, "connectors": [
        {"id": 1, "phases": 3, "wiring": "L1L2L3", "min_current_a": 6, "max_current_a": 32}]}
        for sid in station_ids(n)]
    return {
        "site": {"site_id": "burst", "timezone": "UTC0", "offline_unknown_tokens": "accept",
                 "grid": {"max_current_a": 1000, "safety_margin_a": 1},
                 "charging_groups": [{"id": "all", "name": "All", "max_current_a": 1000,
                                      "stations": stations}]},
        "load_management": {"meter_max_age_s": METER_MAX_AGE_S, "failsafe_non_ev_a": 100},
        "meters": [{"id": "grid", "model": "eastron_sdm630", "host": "127.0.0.1",
                    "port": meter_port, "interval_s": METER_INTERVAL_S, "timeout_s": 1.0,
                    "retries": 0, "stale_after_s": METER_MAX_AGE_S}],
        "ocpp": {"host": "127.0.0.1", "port": 0, "meter_interval_s": 10,
                 "stations": {sid: {"password": None} for sid in station_ids(n)}},
        "store": {"path": store},
        "control": {"interval_s": CONTROL_INTERVAL_S, "grid_meter": "grid"},
    }


# ----------------------------------------------------------------- edge process
class _GcPauses:
    """The longest garbage-collector pause since the last look (context for the lag)."""

    def __init__(self) -> None:
        self.worst_ms = 0.0
        self._t0 = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.worst_ms = max(self.worst_ms, (time.perf_counter() - self._t0) * 1000.0)

    def take(self) -> float:
        worst, self.worst_ms = self.worst_ms, 0.0
        return worst


async def edge_main(config_path: str) -> None:
    import logging
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("ocpp").setLevel(logging.CRITICAL)
    from edge import config
    from edge.service import EdgeService

    # as `edge run` does: start-up objects frozen out of the collector
    svc = EdgeService(config.from_dict(json.loads(Path(config_path).read_text())), freeze_gc=True)
    lag = {"max_ms": 0.0}
    gcp = _GcPauses()
    readings = {"last": None, "gap": 0.0}

    def on_reading(r) -> None:
        # the gap between two good readings is what a step can find stale
        if readings["last"] is not None:
            readings["gap"] = max(readings["gap"], r.at_s - readings["last"])
        readings["last"] = r.at_s

    def on_step(s) -> None:
        worst, lag["max_ms"] = lag["max_ms"], 0.0
        gap, readings["gap"] = readings["gap"], 0.0
        stations = s.gateway.stations.values()
        pacer = getattr(s.gateway, "startup", None)     # None on a gateway without one
        _emit({"event": "step", "t": time.time(), "mode": s.last.status["mode"],
               "reason": s.last.status.get("reason"),
               "meter_gap_s": gap,
               "lag_ms": worst, "gc_ms": gcp.take(),
               "step_ms": 1000.0 * (s.last_step_s or 0.0),
               "booted": sum(1 for st in stations if st.booted),
               "connections": sum(st.link_seq for st in stations),
               "started": sum(1 for st in stations if st.booted and st.link is not None
                              and not getattr(st.link, "starting", False)),
               "pacer": pacer.stats() if pacer is not None else None})
    svc.on_cycle(on_step)
    await svc.start()
    svc.poller.subscribe(on_reading)
    lag_task = asyncio.ensure_future(_loop_lag(lag))
    _emit({"event": "port", "port": svc.ocpp_port, "pid": os.getpid()})
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, sys.stdin.readline)   # any line (or EOF) ends it
    finally:
        lag_task.cancel()
        await svc.stop()
        _emit({"event": "stopped"})


# ----------------------------------------------------------------- orchestration
def _start_meter(tmp: Path) -> tuple[subprocess.Popen, int]:
    log = open(tmp / "meter.log", "w")
    p = subprocess.Popen([sys.executable, "-m", "host_tools.sim_meter", "--model",
                          "eastron_sdm630", "--port", "0", "--current", "20"],
                         cwd=str(ROOT), stdout=subprocess.PIPE, stderr=log, text=True)
    line = p.stdout.readline()       # "simulated eastron_sdm630 on 127.0.0.1:PORT ..."
    try:
        port = int(line.split(" on ", 1)[1].split()[0].rsplit(":", 1)[1])
    except (IndexError, ValueError):
        p.kill()
        raise RuntimeError("meter simulator did not start: %r" % line)
    return p, port


def _collect_steps(edge: _Proc, until: float) -> list[dict]:
    steps = []
    while time.monotonic() < until:
        try:
            steps.append(edge.expect("step", max(0.05, until - time.monotonic())))
        except TimeoutError:
            break
    return steps


def _start_fleet(tmp: Path, port: int, n: int, spread_s: float) -> subprocess.Popen:
    log = open(tmp / "fleet.log", "w")
    return subprocess.Popen(
        [sys.executable, "-m", "host_tools.sim_wallbox", "--url", "ws://127.0.0.1:%d" % port,
         "--stations", str(n), "--version", "mixed", "--response-delay-s", "0",
         "--connect-spread-s", str(spread_s), "--lean", "--show-every-s", "0"],
        cwd=str(ROOT), stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def _stop(p: subprocess.Popen | None) -> None:
    if p is not None and p.poll() is None:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _hogs(count: int, cpu: int) -> list[subprocess.Popen]:
    """Busy loops pinned to one core: the edge pinned there gets about 1/(count+1) of
    it, as on a gateway CPU that many times slower (plus the scheduler's time slices)."""
    # each ends by itself when this process is gone or after 10 minutes at most
    code = ("import os, time\nos.sched_setaffinity(0, {%d})\nend = time.monotonic() + 600\n"
            "while os.getppid() == %d and time.monotonic() < end: pass" % (cpu, os.getpid()))
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]


def run_case(n: int, spread_s: float, slower: int = 1) -> list[dict]:
    case = "%d wallboxes in %g s" % (n, spread_s)
    if slower > 1:
        case += ", edge CPU 1/%d" % slower
    rows: list[dict] = []

    def row(metric, value, unit, target=None, ok=None):
        rows.append({"area": AREA, "case": case, "metric": metric,
                     "value": None if value is None else round(value, 3), "unit": unit,
                     "target": target, "ok": ok})

    tmp = Path(tempfile.mkdtemp(prefix="bench_burst_"))
    meter = edge = fleet = None
    hogs: list[subprocess.Popen] = []
    try:
        meter, meter_port = _start_meter(tmp)
        cfg = tmp / "edge.json"
        cfg.write_text(json.dumps(edge_config(n, meter_port, str(tmp / "edge.db"))))
        edge = _Proc(["edge", str(cfg)], tmp / "edge.log", module="bench.bench_burst")
        port_msg = edge.expect("port", 60)
        pid = port_msg["pid"]
        if slower > 1:
            os.sched_setaffinity(pid, {0})
            hogs = _hogs(slower - 1, 0)
        before = _collect_steps(edge, time.monotonic() + BASELINE_S)
        load0 = os.getloadavg()[0]
        ticks0, t0 = _cpu_ticks(pid), time.monotonic()
        fleet = _start_fleet(tmp, port_msg["port"], n, spread_s)
        steps: list[dict] = []
        deadline = time.monotonic() + 120 + spread_s
        while time.monotonic() < deadline:
            steps += _collect_steps(edge, time.monotonic() + 0.5)
            if steps and steps[-1]["started"] >= n and not (steps[-1]["pacer"] or {}).get("waiting"):
                break
        burst_s = time.monotonic() - t0
        steps += _collect_steps(edge, time.monotonic() + QUIET_AFTER_S)
        ticks1, t1 = _cpu_ticks(pid), time.monotonic()
        load1 = os.getloadavg()[0]
        last = steps[-1] if steps else {"booted": 0, "started": 0, "pacer": None}
        row("wallboxes through their start-up (booted, settings, profiles, list)",
            last["started"], "count", "= %d" % n, last["started"] == n)
        row("first connection until the last start-up was done", burst_s, "s")
        retries = last.get("connections", n) - n
        row("connections beyond one per wallbox (a wallbox gave up and tried again)",
            retries, "count", "= 0", retries == 0)
        failsafe_s = sum(b["t"] - a["t"] for a, b in zip(steps, steps[1:])
                         if a["mode"] == "failsafe")
        reasons = sorted({str(s["reason"]) for s in steps if s["mode"] == "failsafe"})
        row("time in fail-safe, healthy meter" + (" (%s)" % ", ".join(reasons) if reasons else ""),
            failsafe_s, "s", "= 0", failsafe_s == 0)
        periods = [b["t"] - a["t"] for a, b in zip(steps, steps[1:])]
        if periods:
            limit = CONTROL_INTERVAL_S * (1 + TOLERANCE)
            target = "<= %.2f s" % limit
            med, p95, worst = statistics.median(periods), percentile(periods, 95), max(periods)
            row("control period median (n=%d, configured %g s)" % (len(periods),
                                                                   CONTROL_INTERVAL_S),
                med, "s", target, med <= limit)
            row("control period p95", p95, "s", target, p95 <= limit)
            row("control period max", worst, "s", target, worst <= limit)
        base = [b["t"] - a["t"] for a, b in zip(before, before[1:])]
        if base:
            row("control period before the burst, median / max (n=%d)" % len(base),
                statistics.median(base), "s", "max %.3f s" % max(base))
        gap = max((s["meter_gap_s"] for s in steps), default=None)
        row("longest gap between two meter readings (poll %g s)" % METER_INTERVAL_S, gap, "s",
            "<= %d s" % METER_MAX_AGE_S, gap is not None and gap <= METER_MAX_AGE_S)
        lags = [s["lag_ms"] for s in steps]
        row("edge event-loop lag, worst per step: median / max (context)",
            statistics.median(lags) if lags else None, "ms",
            "max %.0f ms" % max(lags) if lags else None)
        steps_ms = [s["step_ms"] for s in steps]
        row("control step duration (allocate and send), median / max (context)",
            statistics.median(steps_ms) if steps_ms else None, "ms",
            "max %.0f ms" % max(steps_ms) if steps_ms else None)
        row("edge longest garbage-collector pause (context)",
            max((s["gc_ms"] for s in steps), default=None), "ms")
        if last.get("pacer"):
            p = last["pacer"]
            row("start-up pieces let through in one loop turn, most (pacer allows %d)"
                % p["per_turn"], p["busiest_turn"], "count", "<= %d" % p["per_turn"],
                p["busiest_turn"] <= p["per_turn"])
            row("start-up pieces waiting for their turn, most", p["peak_waiting"], "count")
        tck = os.sysconf("SC_CLK_TCK")
        cpu_s = (ticks1 - ticks0) / tck
        row("edge CPU share from first connection to quiet", 100.0 * cpu_s / (t1 - t0),
            "% of one core")
        row("edge CPU from first connection to quiet, per wallbox", 1000.0 * cpu_s / n, "ms")
        row("machine load average (1 min) before the burst", load0, "")
        row("machine load average (1 min) after the burst", load1, "")
    except Exception as e:
        tails = ["%s log: %s" % (name, _tail(tmp / name))
                 for name in ("edge.log", "fleet.log", "meter.log")]
        rows.append({"area": AREA, "case": case, "metric": "(case failed)", "value": None,
                     "unit": "", "target": None, "ok": False,
                     "error": "; ".join(["%s: %s" % (type(e).__name__, e)] + tails)})
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        _stop(fleet)
        if edge is not None:
            edge.close()
        _stop(meter)
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text().strip().splitlines()[-lines:])
    except OSError:
        return ""


def run(quick: bool = False) -> list[dict]:
    if quick:
        return run_case(100, 1.0)
    # as asked (500 within 5 s), all at once, and within 5 s on a gateway CPU 4x slower
    return run_case(500, 5.0) + run_case(500, 0.0) + run_case(500, 5.0, slower=4)


def main(argv: list[str]) -> None:
    if argv and argv[0] == "edge":
        asyncio.run(edge_main(argv[1]))
        return
    n = int(argv[0]) if argv else 500
    spread = float(argv[1]) if len(argv) > 1 else 5.0
    slower = int(argv[2]) if len(argv) > 2 else 1
    for r in run_case(n, spread, slower):
        print("%-22s %-70s %10s %-14s %-10s %s" % (
            r["case"], r["metric"], r["value"], r["unit"], r["target"] or "",
            {True: "ok", False: "FAIL", None: ""}[r["ok"]]) + (
            "  " + r["error"] if r.get("error") else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
