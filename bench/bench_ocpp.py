"""OCPP load benchmark: the real edge gateway with 100 and 500 simulated wallboxes.

Three processes, so the edge's own cost can be read from /proc without the
simulator's share in it:

* this one orchestrates and measures (CPU ticks and resident memory of the
  gateway process from /proc/<pid>/stat and /proc/<pid>/status);
* ``python -m bench.bench_ocpp gateway CONFIG`` runs edge.ocpp_gateway.server.Gateway
  on a site with N stations and a SQLite session store;
* ``python -m bench.bench_ocpp sim PORT N`` runs N simulated wallboxes
  (host_tools.sim_wallbox, OCPP 1.6 and 2.0.1 alternating) that start a session
  each and send meter values every 10 s.

Measured per case: the gateway's CPU share and resident memory in steady state
(meter values plus a stream of Authorize requests), the Authorize round trip
seen by the wallboxes (median, p99), and the time from an allocation change
(``apply_limits`` called in the gateway) to the moment the last wallbox has its
new profile (median and worst over several changes).

Each process speaks JSON lines on stdin/stdout; every wait has a deadline, so
a hung part ends the case with failed rows instead of hanging `make bench`.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AREA = "ocpp"
TOKENS_PER_SITE = 50
METER_INTERVAL_S = 10
TARGETS = {"cpu": 25.0, "rss": 200.0, "auth_p99": 20.0, "profiles": 500.0}


# ----------------------------------------------------------------- shared helpers
def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _commands():
    """Yield JSON commands from stdin without blocking the event loop."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        line = line.strip()
        if line:
            yield json.loads(line)


def station_ids(n: int) -> list[str]:
    return ["CP%04d" % (i + 1) for i in range(n)]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100.0 * len(ordered)) - 1))
    return ordered[k]


# ----------------------------------------------------------------- gateway process
def _site_dict(n: int) -> dict:
    stations = [{"id": sid, "max_current_a": 32, "connectors": [
        {"id": 1, "phases": 3, "wiring": "L1L2L3", "min_current_a": 6, "max_current_a": 32}]}
        for sid in station_ids(n)]
    return {"site_id": "bench", "timezone": "UTC0",
            "grid": {"max_current_a": 1000, "max_power_w": None, "safety_margin_a": 1},
            "offline_unknown_tokens": "deny",
            "charging_groups": [{"id": "all", "name": "All", "max_current_a": 1000,
                                 "stations": stations}]}


def _snapshot() -> dict:
    return {"version": 1, "drivers": [],
            "groups": [{"id": "g-staff", "name": "Staff", "kind": "drivers",
                        "billing": "record_only", "tariff": None, "active_on": {"site": True},
                        "prioritised": False, "state": "active"}],
            "tokens": [{"uid": "TOK%03d" % i, "groups": ["g-staff"], "status": "valid",
                        "expires_s": None, "driver": None, "provider": None}
                       for i in range(TOKENS_PER_SITE)]}


_SENDS: list[float] = []


def _time_profile_sends() -> None:
    """Note when the gateway starts sending each profile (diagnostic timestamps only),
    to tell the edge's preparation time from transit and wallbox time. If the gateway's
    internals are named differently one day, the row is just left out."""
    try:
        from edge.ocpp_gateway.v16.handlers import StationV16
        from edge.ocpp_gateway.v201.handlers import StationV201
        classes = [c for c in (StationV16, StationV201) if hasattr(c, "send_profile")]
    except ImportError:
        return
    for cls in classes:
        original = cls.send_profile

        async def send_profile(self, p, _original=original):
            _SENDS.append(time.time())
            return await _original(self, p)
        cls.send_profile = send_profile


async def gateway_main(config_path: str) -> None:
    import logging
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("ocpp").setLevel(logging.CRITICAL)
    from edge.core.book import GroupBook
    from edge.core.topology import Site
    from edge.lists_holder import ListsHolder
    from edge.ocpp_gateway.server import Gateway
    from edge.store.db import open_db
    from edge.store.outbox import Outbox
    from edge.store.sessions import SessionStore

    _time_profile_sends()
    cfg = json.loads(Path(config_path).read_text())
    site = Site.from_dict(_site_dict(cfg["n"]))
    lists = ListsHolder(site, GroupBook.from_snapshot(_snapshot(), site, "sync", int(time.time())))
    db = open_db(cfg["db"])
    sessions = SessionStore(db, outbox=Outbox(db))
    gw = Gateway(site, {sid: {"password": None} for sid in station_ids(cfg["n"])}, lists,
                 sessions, meter_interval_s=METER_INTERVAL_S, heartbeat_s=300)
    port = await gw.start("127.0.0.1", 0)
    _emit({"event": "port", "port": port, "pid": os.getpid()})
    try:
        async for cmd in _commands():
            if cmd["cmd"] == "sessions":
                _emit({"event": "sessions", "count": len(gw.live_sessions())})
            elif cmd["cmd"] == "limits":
                keys = [s["key"] for s in gw.live_sessions()]
                limits = {tuple(k): (int(cmd["limit_da"]), 3) for k in keys}
                _SENDS.clear()
                t0 = time.time()
                results = await gw.apply_limits(limits)
                t1 = time.time()
                counts: dict = {}
                for r in results.values():
                    counts[r] = counts.get(r, 0) + 1
                _emit({"event": "applied", "t0": t0, "t1": t1, "results": counts,
                       "first_send": min(_SENDS) if _SENDS else None})
            elif cmd["cmd"] == "quit":
                break
    finally:
        await gw.stop()
        _emit({"event": "stopped"})


# ----------------------------------------------------------------- simulator process
async def sim_main(port: int, n: int, spread_s: float) -> None:
    import logging
    import random
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("ocpp").setLevel(logging.CRITICAL)
    sys.path.insert(0, str(ROOT))
    from host_tools.sim_wallbox import Fleet, SimClock, build_specs

    specs = build_specs(n, "mixed", prefix="CP", response_delay_s=0,
                        meter_interval_s=METER_INTERVAL_S)
    for spec, sid in zip(specs, station_ids(n)):
        spec.id = sid
    fleet = Fleet("ws://127.0.0.1:%d" % port, specs, seed=7, clock=SimClock(),
                  reconnect_s=1.0, response_timeout_s=30, connect_spread_s=spread_s,
                  validate_schema=False)   # measure the edge, not the simulator
    rnd = random.Random(7)
    started = time.monotonic()
    lag = {"max_ms": 0.0}
    lag_task = asyncio.ensure_future(_loop_lag(lag))
    await fleet.start()
    try:
        async for cmd in _commands():
            what = cmd["cmd"]
            if what == "connect":
                await asyncio.wait_for(fleet.wait_connected(), cmd["timeout"])
                _emit({"event": "connected", "n": n, "pid": os.getpid(),
                       "after_s": time.monotonic() - started})
            elif what == "plug":
                async def arrive(i, sid):
                    await asyncio.sleep(cmd["spread_s"] * i / n)
                    return await fleet.plug_in(sid, 1, "TOK%03d" % (i % TOKENS_PER_SITE),
                                               need_wh=200_000, max_current_a=16)
                started = await asyncio.wait_for(asyncio.gather(
                    *(arrive(i, sid) for i, sid in enumerate(fleet.stations))), cmd["timeout"])
                _emit({"event": "plugged", "started": sum(1 for s in started if s)})
            elif what == "probe":
                rtts = await _probe(fleet, rnd, cmd["seconds"], cmd["rate"])
                _emit({"event": "probed", "rtt_ms": rtts})
            elif what == "stats":
                sent: dict = {}
                for link in fleet.links.values():
                    for kind, count in link.sent.items():
                        sent[kind] = sent.get(kind, 0) + count
                _emit({"event": "stats", "sent": sent,
                       "reconnects": sum(max(0, l.boots - 1) for l in fleet.links.values())})
            elif what == "watch":
                lag["max_ms"] = 0.0
                first, last, count = await _watch(fleet, cmd["limit_a"], cmd["since"],
                                                  cmd["timeout"])
                _emit({"event": "watched", "first": first, "last": last, "count": count,
                       "lag_ms": lag["max_ms"]})
            elif what == "quit":
                break
    finally:
        lag_task.cancel()
        await fleet.stop()
        _emit({"event": "stopped"})


async def _loop_lag(lag: dict, period_s: float = 0.005) -> None:
    """How late the simulator's event loop wakes up: if it is busy, what it reports
    about the edge's timing includes its own delay."""
    while True:
        t0 = time.monotonic()
        await asyncio.sleep(period_s)
        late = (time.monotonic() - t0 - period_s) * 1000.0
        lag["max_ms"] = max(lag["max_ms"], late)


async def _probe(fleet, rnd, seconds: float, rate: float) -> list[float]:
    """Authorize requests from random wallboxes at `rate` per second for `seconds`."""
    rtts: list[float] = []
    ids = list(fleet.stations)

    async def one(sid):
        link = fleet.links[sid]
        t0 = time.perf_counter()
        try:
            status = await link.authorize("TOK%03d" % rnd.randrange(TOKENS_PER_SITE))
        except Exception:
            return
        if status == "Accepted":
            rtts.append((time.perf_counter() - t0) * 1000.0)

    tasks = []
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < seconds:
        tasks.append(asyncio.ensure_future(one(rnd.choice(ids))))
        k += 1
        await asyncio.sleep(max(0.0, start + k / rate - time.monotonic()))
    await asyncio.gather(*tasks)
    return rtts


async def _watch(fleet, limit_a: float, since: float, timeout: float):
    """Wall time at which the last wallbox had a profile limiting it to `limit_a`."""
    deadline = time.monotonic() + timeout
    while True:
        times = []
        for st in fleet.stations.values():
            hits = [w for w, _, lim in st.profile_log
                    if w >= since and lim is not None and abs(lim - limit_a) < 0.05]
            if hits:
                times.append(min(hits))
        if len(times) == len(fleet.stations) or time.monotonic() > deadline:
            return (min(times) if times else None), (max(times) if times else None), len(times)
        await asyncio.sleep(0.02)


# ----------------------------------------------------------------- orchestration
class _Proc:
    def __init__(self, args: list[str], log_path: Path, module: str = "bench.bench_ocpp") -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.p = subprocess.Popen([sys.executable, "-m", module] + args,
                                  cwd=str(ROOT), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self._log, text=True, bufsize=1)

    def stderr_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text().strip().splitlines()[-lines:])
        except OSError:
            return ""

    def send(self, **cmd) -> None:
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()

    def expect(self, event: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no %r within %.0f s" % (event, timeout))
            ready, _, _ = select.select([self.p.stdout], [], [], left)
            if not ready:
                continue
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("process ended while waiting for %r" % event)
            msg = json.loads(line)
            if msg.get("event") == event:
                return msg

    def close(self) -> None:
        if self.p.poll() is None:
            try:
                self.send(cmd="quit")
                self.p.wait(timeout=10)
            except Exception:
                self.p.kill()
                self.p.wait()
        self._log.close()


def _cpu_ticks(pid: int) -> int:
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime (fields 14, 15)


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0]) / 1024.0
    return out["VmRSS"], out["VmHWM"]


def run_case(n: int, quick: bool) -> list[dict]:
    case = "%d wallboxes" % n
    steady_s = 5.0 if quick else 15.0
    changes = 3 if quick else 5
    spread_s = 1.0 if quick else 3.0
    auth_rate = max(2.0, n / 25.0)
    rows: list[dict] = []

    def row(metric, value, unit, target=None, ok=None):
        rows.append({"area": AREA, "case": case, "metric": metric,
                     "value": None if value is None else round(value, 2), "unit": unit,
                     "target": target, "ok": ok})

    tmp = tempfile.mkdtemp(prefix="bench_ocpp_")
    cfg = Path(tmp) / "gateway.json"
    cfg.write_text(json.dumps({"n": n, "db": str(Path(tmp) / "edge.db")}))
    gw = sim = None
    try:
        gw = _Proc(["gateway", str(cfg)], Path(tmp) / "gateway.log")
        port_msg = gw.expect("port", 30)
        pid = port_msg["pid"]
        sim = _Proc(["sim", str(port_msg["port"]), str(n), str(spread_s)], Path(tmp) / "sim.log")
        sim.send(cmd="connect", timeout=60)
        connected = sim.expect("connected", 65)
        sim_pid = connected["pid"]
        row("all wallboxes booted (connections spread over %.0f s)" % spread_s,
            connected["after_s"], "s")
        time.sleep(1.0 if quick else 2.0)   # the gateway's after-boot work (lists, settings)
        # Arrivals spread over one meter interval: sampling runs from each session's
        # start, so this spreads the meter values evenly as on a real site.
        sim.send(cmd="plug", timeout=60, spread_s=METER_INTERVAL_S)
        plugged = sim.expect("plugged", 65)["started"]
        row("sessions started", plugged, "count", "= %d" % n, plugged == n)
        # Every start is committed to SQLite before the wallbox hears back; wait until
        # the edge lists them all, then a little more, so the window is steady state.
        deadline = time.monotonic() + 60
        while True:
            gw.send(cmd="sessions")
            if gw.expect("sessions", 30)["count"] >= plugged or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        time.sleep(1.0)

        # Steady state: meter values every 10 s per wallbox plus Authorize traffic.
        sim.send(cmd="stats")
        sent0 = sim.expect("stats", 30)["sent"]
        ticks0, sim_ticks0, t0 = _cpu_ticks(pid), _cpu_ticks(sim_pid), time.monotonic()
        sim.send(cmd="probe", seconds=steady_s, rate=auth_rate)
        rtts = sim.expect("probed", steady_s + 60)["rtt_ms"]
        ticks1, sim_ticks1, t1 = _cpu_ticks(pid), _cpu_ticks(sim_pid), time.monotonic()
        sim.send(cmd="stats")
        stats = sim.expect("stats", 30)
        tck = os.sysconf("SC_CLK_TCK")
        cpu = 100.0 * (ticks1 - ticks0) / tck / (t1 - t0)
        sim_cpu = 100.0 * (sim_ticks1 - sim_ticks0) / tck / (t1 - t0)
        meters = stats["sent"].get("meter", 0) - sent0.get("meter", 0)
        rss, hwm = _rss_mb(pid)
        row("meter value messages to the edge (window %.0f s)" % (t1 - t0),
            meters / (t1 - t0), "per s")
        row("edge CPU share (steady, %.0f Authorize/s)" % auth_rate, cpu, "% of one core",
            "< %d %%" % TARGETS["cpu"], cpu < TARGETS["cpu"])
        row("simulator CPU share (for context)", sim_cpu, "% of one core")
        row("machine load average (1 min, for context)", os.getloadavg()[0], "")
        row("edge resident memory", rss, "MB", "< %d MB" % TARGETS["rss"], rss < TARGETS["rss"])
        row("edge peak resident memory", hwm, "MB", "< %d MB" % TARGETS["rss"],
            hwm < TARGETS["rss"])
        if rtts:
            p99 = percentile(rtts, 99)
            row("Authorize round trip median (%d requests)" % len(rtts),
                statistics.median(rtts), "ms")
            row("Authorize round trip p99", p99, "ms", "< %d ms" % TARGETS["auth_p99"],
                p99 < TARGETS["auth_p99"])
        else:
            row("Authorize round trip p99", None, "ms", "< %d ms" % TARGETS["auth_p99"], False)
        if stats["reconnects"]:
            row("wallbox reconnects during the run", stats["reconnects"], "count", "= 0", False)

        # Allocation changes: time until the last wallbox has its new profile.
        lasts, firsts, returns, sends, lags = [], [], [], [], []
        for i in range(changes):
            limit_da = 100 + 10 * (i % 2) + 20 * i     # a different limit every time
            since = time.time()
            sim.send(cmd="watch", limit_a=limit_da / 10.0, since=since, timeout=5)
            gw.send(cmd="limits", limit_da=limit_da)
            applied = gw.expect("applied", 30)
            watched = sim.expect("watched", 30)
            if watched["count"] != n or watched["last"] is None:
                row("profiles delivered (change %d)" % (i + 1), watched["count"], "count",
                    "= %d" % n, False)
                continue
            lasts.append((watched["last"] - applied["t0"]) * 1000.0)
            firsts.append((watched["first"] - applied["t0"]) * 1000.0)
            lags.append(watched["lag_ms"])
            returns.append((applied["t1"] - applied["t0"]) * 1000.0)
            if applied.get("first_send") is not None:
                sends.append((applied["first_send"] - applied["t0"]) * 1000.0)
            time.sleep(0.5)
        if lasts:
            row("allocation change to last profile, median of %d" % len(lasts),
                statistics.median(lasts), "ms", "< %d ms" % TARGETS["profiles"],
                statistics.median(lasts) < TARGETS["profiles"])
            row("allocation change to last profile, worst of %d" % len(lasts), max(lasts),
                "ms", "< %d ms" % TARGETS["profiles"], max(lasts) < TARGETS["profiles"])
            row("allocation change to first profile, median", statistics.median(firsts), "ms")
            row("apply_limits returned (all answers in), median", statistics.median(returns),
                "ms")
            if sends:
                row("edge began sending the first profile, median", statistics.median(sends),
                    "ms")
            row("simulator event-loop lag during a change, worst (for context)", max(lags),
                "ms")
    except Exception as e:
        tails = ["%s stderr: %s" % (name, proc.stderr_tail())
                 for name, proc in (("gateway", gw), ("simulator", sim)) if proc is not None]
        rows.append({"area": AREA, "case": case, "metric": "(case failed)", "value": None,
                     "unit": "", "target": None, "ok": False,
                     "error": "; ".join(["%s: %s" % (type(e).__name__, e)] + tails)})
    finally:
        for proc in (sim, gw):
            if proc is not None:
                proc.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def run(quick: bool = False) -> list[dict]:
    rows = []
    for n in (100, 500):
        rows += run_case(n, quick)
    return rows


def main(argv: list[str]) -> None:
    if argv and argv[0] == "gateway":
        asyncio.run(gateway_main(argv[1]))
    elif argv and argv[0] == "sim":
        asyncio.run(sim_main(int(argv[1]), int(argv[2]), float(argv[3])))
    else:
        quick = "--quick" in argv
        for r in run(quick=quick):
            print("%-12s %-55s %10s %-14s %-10s %s" % (
                r["case"], r["metric"], r["value"], r["unit"], r["target"] or "",
                {True: "ok", False: "FAIL", None: ""}[r["ok"]]) + (
                "  " + r["error"] if r.get("error") else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
