"""Soak benchmark: the whole edge service for minutes (or hours) under session churn.

Three processes, as in bench_ocpp: this one orchestrates and reads the edge's RSS and
``/proc/<pid>/io`` write_bytes; ``python -m bench.bench_soak edge CONFIG`` runs
edge.service.EdgeService (store, gateway, control loop, retention) with a stand-in for
the cloud that acknowledges every outbox record within a second and remembers what it
got; ``python -m bench.bench_soak sim PORT N`` runs N simulated wallboxes (1.6 and
2.0.1 alternating) with cars arriving at random and staying 30 to 60 s, so that
about 85 % of the connectors charge at any time, with meter values every 10 s.

Retention runs with periods of seconds instead of days (sessions 40 s, samples 20 s,
a pass every 10 s) so that the store reaches its steady state within the run.

Writes are counted two ways: ``write_bytes`` of /proc/<pid>/io (what the process made
the kernel send to the block device, counted when a page is dirtied), and, when a C
compiler is present, a small LD_PRELOAD library (bench/fsync_count.c) counting the
process's fsync/fdatasync calls and the bytes it passed to pwrite on regular files.

Length: ``EDGE_SOAK_MINUTES`` (default 12; `make bench --quick` 2), or
``python -m bench.bench_soak --minutes 30``. The first half of the run (at least a
minute) is warm-up; slopes are fitted over the second half.
"""
from __future__ import annotations

import asyncio
import json
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
AREA = "soak"
N_WALLBOXES = 300
METER_INTERVAL_S = 10
STAY_S = (30.0, 60.0)
RSS_SLOPE_TARGET_MB_H = 5.0
WARM_MIN_S = 60.0


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _commands():
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        if line.strip():
            yield json.loads(line)


def station_ids(n: int) -> list[str]:
    return ["CP%04d" % (i + 1) for i in range(n)]


def _site(n: int) -> dict:
    return {"site_id": "soak", "timezone": "UTC0",
            "grid": {"max_current_a": 1000, "safety_margin_a": 1},
            "offline_unknown_tokens": "accept",
            "charging_groups": [{"id": "all", "name": "All", "max_current_a": 1000,
                                 "stations": [{"id": sid, "max_current_a": 32, "connectors": [
                                     {"id": 1, "phases": 3, "wiring": "L1L2L3",
                                      "min_current_a": 6, "max_current_a": 16}]}
                                     for sid in station_ids(n)]}]}


def _sync_counter():
    """(syncs, pwrite bytes) from the LD_PRELOAD counter, or None without it."""
    import ctypes
    try:
        lib = ctypes.CDLL(None)
        lib.fsc_syncs.restype = ctypes.c_longlong
        lib.fsc_file_bytes.restype = ctypes.c_longlong
    except (OSError, AttributeError):
        return None
    return lambda: (int(lib.fsc_syncs()), int(lib.fsc_file_bytes()))


def _mallinfo():
    """glibc's malloc statistics (mallinfo2), or None on another libc."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = MallInfo2
    return fn


def _memory_probe():
    """Where the edge's memory is, beside its RSS: Python's own allocator, malloc, SQLite.

    RSS that grows while these stay flat is memory the allocator keeps (fragmentation,
    free lists), not objects the edge holds.
    """
    import ctypes
    import tracemalloc
    mallinfo = _mallinfo()
    try:
        sqlite_used = ctypes.CDLL("libsqlite3.so.0").sqlite3_memory_used
        sqlite_used.restype = ctypes.c_longlong
    except (OSError, AttributeError):
        sqlite_used = None

    def probe() -> dict:
        out = {"py_blocks": sys.getallocatedblocks(),
               "traced": tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None,
               "sqlite": int(sqlite_used()) if sqlite_used else None}
        if mallinfo is not None:
            mi = mallinfo()
            # heap (main arena + thread arenas) in use / free, and mmapped blocks
            out.update(malloc_used=mi.uordblks, malloc_free=mi.fordblks, malloc_mmap=mi.hblkhd,
                       malloc_heap=mi.arena)
        return out
    return probe


def _malloc_trim() -> int | None:
    """Give free heap memory back to the system (glibc); returns RSS freed in bytes."""
    import ctypes
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    before = _rss_mb(os.getpid())
    trim(0)
    return int((before - _rss_mb(os.getpid())) * 1024 * 1024)


# ----------------------------------------------------------------- edge process
async def edge_main(config_path: str) -> None:
    import logging
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("ocpp").setLevel(logging.CRITICAL)
    from edge import config
    from edge.service import EdgeService
    from edge.store.retention import RetentionPolicy

    spec = json.loads(Path(config_path).read_text())
    cfg = config.from_dict({"site": _site(spec["n"]), "store": {"path": spec["db"]},
                            "ocpp": {"host": "127.0.0.1", "port": 0,
                                     "meter_interval_s": METER_INTERVAL_S},
                            "control": {"interval_s": 1}})
    cfg.retention = RetentionPolicy(sessions_keep_s=40, samples_keep_s=20, every_s=10,
                                    sample_every_s=60)
    service = EdgeService(cfg)
    await service.start()
    service.retention.first_after_s = 10
    counter = _sync_counter()
    memory = _memory_probe()
    # (station, transaction id, session id) of completed records acknowledged since the
    # last stats; the orchestrator keeps them, so the bench's cloud does not grow the
    # memory it measures
    acked: list[list] = []
    lag: list[float] = []
    stop = asyncio.Event()

    async def acker() -> None:
        # the cloud: takes every record within a second and acknowledges it
        while not stop.is_set():
            recs = service.outbox.pending(5000)
            for r in recs:
                body = r.decoded_body()
                if body.get("state") == "completed":
                    acked.append([body["station"], str(body["transaction_id"]),
                                  body["session_id"]])
            if recs:
                service.outbox.ack([r.id for r in recs])
            await asyncio.sleep(1.0)

    async def lag_monitor() -> None:
        while not stop.is_set():
            t0 = time.monotonic()
            await asyncio.sleep(0.05)
            lag.append((time.monotonic() - t0 - 0.05) * 1000.0)

    tasks = [asyncio.ensure_future(acker()), asyncio.ensure_future(lag_monitor())]
    _emit({"event": "port", "port": service.ocpp_port, "pid": os.getpid()})
    tracing = bool(spec.get("trace"))
    if tracing:
        import tracemalloc
        tracemalloc.start(int(spec.get("frames", 1)))
    snap0 = None
    try:
        async for cmd in _commands():
            if cmd["cmd"] == "stats":
                n_store = service.conn.execute(
                    "SELECT COUNT(*), SUM(state='completed') FROM sessions").fetchone()
                out = {"event": "stats", "acked": acked[:],
                       "store_sessions": n_store[0], "store_completed": n_store[1] or 0,
                       "samples": service.conn.execute(
                           "SELECT COUNT(*) FROM session_samples").fetchone()[0],
                       "retention_passes": service.retention.passes,
                       "syncs": counter()[0] if counter else None,
                       "pwrite_bytes": counter()[1] if counter else None,
                       "lag_ms": lag[:], "memory": memory()}
                lag.clear()
                acked.clear()
                _emit(out)
            elif cmd["cmd"] == "trace" and tracing:
                import tracemalloc
                snap = tracemalloc.take_snapshot()
                if snap0 is None:
                    snap0 = snap
                    _emit({"event": "trace", "top": []})
                else:
                    group = "traceback" if int(spec.get("frames", 1)) > 1 else "lineno"
                    top = snap.compare_to(snap0, group)[:20]
                    _emit({"event": "trace", "top": [
                        str(s) + ("".join("\n      " + str(f) for f in s.traceback)
                                  if group == "traceback" else "") for s in top]})
            elif cmd["cmd"] == "trim":
                _emit({"event": "trimmed", "freed": _malloc_trim()})
            elif cmd["cmd"] == "final":
                rows = service.conn.execute("SELECT station, transaction_id, session_id"
                                            " FROM sessions").fetchall()
                _emit({"event": "final", "acked": acked[:],
                       "store": [[r[0], str(r[1]), r[2]] for r in rows]})
            elif cmd["cmd"] == "quit":
                break
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        await service.stop()
        _emit({"event": "stopped"})


# ----------------------------------------------------------------- simulator process
async def sim_main(port: int, n: int) -> None:
    import logging
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("ocpp").setLevel(logging.CRITICAL)
    sys.path.insert(0, str(ROOT))
    from host_tools.sim_wallbox import build_specs
    from host_tools.wallbox_sim.fleet import Fleet, Traffic
    from host_tools.wallbox_sim.station import Station

    started: list = []
    original = Station.start_tx

    def start_tx(self, conn, id_tag, *a, **kw):
        tx = original(self, conn, id_tag, *a, **kw)
        started.append((self.id, tx))
        return tx
    Station.start_tx = start_tx

    specs = build_specs(n, "mixed", prefix="CP", response_delay_s=0,
                        meter_interval_s=METER_INTERVAL_S)
    for spec, sid in zip(specs, station_ids(n)):
        spec.id = sid
    stay = sum(STAY_S) / 2
    traffic = Traffic(tokens=["TOK%03d" % i for i in range(50)],
                      mean_gap_s=stay / (0.85 * n), need_wh=(50_000.0, 60_000.0),
                      stay_s=STAY_S, leave_when_full_share=0.0)
    fleet = Fleet("ws://127.0.0.1:%d" % port, specs, seed=11, traffic=None,
                  reconnect_s=1.0, connect_spread_s=3.0, validate_schema=False)
    await fleet.start()
    try:
        async for cmd in _commands():
            if cmd["cmd"] == "connect":
                await asyncio.wait_for(fleet.wait_connected(), cmd["timeout"])
                fleet.traffic = traffic
                fleet._tasks.append(asyncio.ensure_future(fleet._arrivals()))
                _emit({"event": "connected", "pid": os.getpid()})
            elif cmd["cmd"] == "drain":
                fleet._tasks[-1].cancel()            # no more arrivals
                for st in fleet.stations.values():
                    for c in st.connectors.values():
                        if c.ev is not None:
                            st.unplug(c.id)
                deadline = time.monotonic() + cmd["timeout"]
                while time.monotonic() < deadline and (
                        any(st.queue for st in fleet.stations.values())
                        or any(tx.server_id is None for _, tx in started)):
                    await asyncio.sleep(0.2)
                _emit({"event": "drained", "tx": [[sid, tx.server_id] for sid, tx in started],
                       "queued": sum(len(st.queue) for st in fleet.stations.values())})
            elif cmd["cmd"] == "quit":
                break
    finally:
        await fleet.stop()
        _emit({"event": "stopped"})


# ----------------------------------------------------------------- write cost, alone
PREFILL_SESSIONS = 20_000       # ~90 days of a 20-wallbox site, or a month of 300


def writes_main(db: str) -> None:
    """Bytes and fsyncs of one start, one stop, one flush of samples and one pruned
    session, as the gateway and retention do them, in a store already holding
    PREFILL_SESSIONS acknowledged sessions over 90 days (indexes as deep as a site's;
    run under the LD_PRELOAD counter)."""
    from edge.store.db import open_db, transaction
    from edge.store.outbox import Outbox
    from edge.store.retention import DAY_S, Pruner, RetentionPolicy
    from edge.store.sessions import SessionStore
    counter = _sync_counter()
    conn = open_db(db)
    outbox = Outbox(conn)
    clock = [0.0]
    store = SessionStore(conn, outbox=outbox, clock=lambda: clock[0])
    store.sample_every_s = 0
    t0 = 1_780_000_000
    step = 90 * DAY_S // PREFILL_SESSIONS
    conn.execute("PRAGMA synchronous=OFF")          # filling; not measured
    with transaction(conn):
        for i in range(PREFILL_SESSIONS):
            t = clock[0] = t0 + i * step
            rec, _ = store.start("CP%04d" % (i % 300), 1, None, "TOK%03d" % (i % 50), 1000, t)
            for k in range(3):
                store.add_sample(rec["session_id"], t + 60 * k, 1000 + k, [160, 160, 160])
            store.stop(rec["session_id"], t + 3600, 5000, "Local")
    outbox.ack([r.id for r in outbox.pending(10 ** 7)])
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA synchronous=FULL")
    t = t0 + 90 * DAY_S

    def measure(fn, n):
        s0, b0 = counter()
        w0 = _io_write_bytes(os.getpid())
        for i in range(n):
            fn(i)
        s1, b1 = counter()
        return ((s1 - s0) / n, (b1 - b0) / n, (_io_write_bytes(os.getpid()) - w0) / n)
    out = {}
    recs = []

    def start(i):
        clock[0] = t + i
        recs.append(store.start("CPX%04d" % (i % 300), 1, None, "TOK", 1000, t + i)[0])
    out["start"] = measure(start, 300)
    out["stop"] = measure(lambda i: store.stop(recs[i]["session_id"], t + 600 + i, 2000,
                                               "Local"), 300)
    per_flush = 26      # one second of 260 charging cars with 10 s meter values

    def flush(i):
        for k in range(per_flush):
            store.add_sample(recs[k]["session_id"], t + i, 1000 + i, [160, 160, 160])
        store.flush_samples()
    s = measure(flush, 100)
    out["sample"] = [v / per_flush for v in s]
    outbox.ack([r.id for r in outbox.pending(10 ** 7)])
    # one retention pass removing the oldest tenth, per session removed
    pruned = [0]

    def prune(_i):
        keep = 90 * DAY_S - PREFILL_SESSIONS // 10 * step
        pruned[0] = Pruner(conn, RetentionPolicy(sessions_keep_s=keep, samples_keep_s=keep,
                                                 pause_s=0)).run(t)["sessions"]
    p = measure(prune, 1)
    out["prune"] = [v / max(1, pruned[0]) for v in p]
    _emit({"event": "writes", **out})


def _io_write_bytes(pid: int) -> int:
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


# ----------------------------------------------------------------- orchestration
class _Proc:
    def __init__(self, args: list[str], log_path: Path, env: dict | None = None) -> None:
        self._log = open(log_path, "w")
        self.log_path = log_path
        self.p = subprocess.Popen([sys.executable, "-m", "bench.bench_soak"] + args,
                                  cwd=str(ROOT), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self._log, text=True, bufsize=1, env=env)

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
                raise RuntimeError("process ended while waiting for %r: %s" % (
                    event, self.log_path.read_text()[-500:]))
            msg = json.loads(line)
            if msg.get("event") == event:
                return msg

    def close(self) -> None:
        if self.p.poll() is None:
            try:
                self.send(cmd="quit")
                self.p.wait(timeout=30)
            except Exception:
                self.p.kill()
                self.p.wait()
        self._log.close()


def _build_counter(tmp: Path) -> str | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    out = tmp / "fsync_count.so"
    r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(out),
                        str(ROOT / "bench" / "fsync_count.c"), "-ldl"], capture_output=True)
    return str(out) if r.returncode == 0 else None


def _rss_mb(pid: int) -> float:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _slope_per_h(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per hour."""
    return _fit(points)[0]


def _fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope of (seconds, value) points per hour, and its 95 % half-width
    (1.96 standard errors; RSS moves in steps, so the spread says how sure the slope is)."""
    n = len(points)
    if n < 3:
        return 0.0, float("inf")
    mt = sum(p[0] for p in points) / n
    mv = sum(p[1] for p in points) / n
    var = sum((p[0] - mt) ** 2 for p in points)
    if var == 0:
        return 0.0, float("inf")
    b = sum((p[0] - mt) * (p[1] - mv) for p in points) / var
    resid = sum((p[1] - mv - b * (p[0] - mt)) ** 2 for p in points)
    se = (resid / (n - 2) / var) ** 0.5
    return 3600.0 * b, 3600.0 * 1.96 * se


def _rss_parts_mb(pid: int) -> dict[str, float]:
    """RSS by kind of mapping: the main malloc heap ([heap], grown with brk), anonymous
    mappings (Python's object arenas, malloc's thread arenas and large blocks), files
    (code, libraries, the store's shared memory)."""
    parts = {"heap": 0.0, "anon": 0.0, "file": 0.0}
    kind = "file"
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split(None, 6)
            if not head[0].endswith(":"):            # a mapping's first line
                name = head[5].strip() if len(head) > 5 else ""
                kind = "heap" if name == "[heap]" else "anon" if not name or \
                    name.startswith("[anon") else "file"
            elif head[0] == "Rss:":
                parts[kind] += int(head[1]) / 1024.0
    return parts


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100.0 * len(s) + 0.5)) - 1))]


def _store_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(str(db) + "-wal")) if p.exists())


def run(quick: bool = False, minutes: float | None = None, trace: bool = False,
        frames: int = 1, arena_max: int | None = None) -> list[dict]:
    if minutes is None:
        minutes = float(os.environ.get("EDGE_SOAK_MINUTES", "2" if quick else "12"))
    total_s = minutes * 60.0
    # The slope is fitted over the second half of the run: the first half is warm-up
    # (connections, bounded per-station memories filling, the store reaching its size
    # under retention), at least WARM_MIN_S.
    warm_s = max(WARM_MIN_S, total_s / 2.0)
    n = N_WALLBOXES
    case = "%d wallboxes, %.0f min" % (n, minutes)
    rows: list[dict] = []

    def row(metric, value, unit, target=None, ok=None):
        rows.append({"area": AREA, "case": case, "metric": metric,
                     "value": None if value is None else round(value, 3), "unit": unit,
                     "target": target, "ok": ok})

    tmp = Path(tempfile.mkdtemp(prefix="bench_soak_"))
    db = tmp / "edge.db"
    (tmp / "edge.json").write_text(json.dumps({"n": n, "db": str(db), "trace": trace,
                                               "frames": frames}))
    env = dict(os.environ)
    so = _build_counter(tmp)
    if so:
        env["LD_PRELOAD"] = so
    edge_env = dict(env)
    if arena_max is not None:
        edge_env["MALLOC_ARENA_MAX"] = str(arena_max)
    edge = sim = None
    try:
        w = _Proc(["writes", str(tmp / "writes.db")], tmp / "writes.log", env)
        cost = w.expect("writes", 600)
        w.close()
        for what, label in (("start", "session start (with its outbox record)"),
                            ("stop", "session stop (with its outbox record)"),
                            ("sample", "stored meter sample (26 per flush)"),
                            ("prune", "session pruned by retention (with its samples)")):
            syncs, pbytes, wbytes = cost[what]
            label += ", store of %d sessions" % PREFILL_SESSIONS
            row("write cost: %s, fsyncs" % label, syncs if so else None, "per event")
            row("write cost: %s, bytes SQLite wrote (WAL + checkpoints)" % label,
                pbytes if so else None, "B per event")
            row("write cost: %s, bytes to the device" % label, wbytes, "B per event")

        edge = _Proc(["edge", str(tmp / "edge.json")], tmp / "edge.log", edge_env)
        port = edge.expect("port", 60)
        pid = port["pid"]
        sim = _Proc(["sim", str(port["port"]), str(n)], tmp / "sim.log")
        sim.send(cmd="connect", timeout=120)
        sim.expect("connected", 125)
        t0 = time.monotonic()
        cloud: dict[tuple, set] = {}     # (station, transaction id) -> session ids acked
        series: list[dict] = []          # one per stats, after warm-up
        lags: list[float] = []
        traced_growth: list[str] = []
        loads: list[float] = []
        while time.monotonic() - t0 < total_s:
            time.sleep(2.0)
            edge.send(cmd="stats")
            st = edge.expect("stats", 60)
            now = time.monotonic() - t0
            for s_id, tx, sess in st["acked"]:
                cloud.setdefault((s_id, tx), set()).add(sess)
            st["memory"].update({"rss_" + k: v * 1e6 for k, v in _rss_parts_mb(pid).items()})
            st.update(at=now, rss=_rss_mb(pid), wb=_io_write_bytes(pid),
                      store=_store_bytes(db), n_acked=len(st["acked"]))
            loads.append(os.getloadavg()[0])
            if now >= warm_s:
                if not series and trace:
                    edge.send(cmd="trace")       # the snapshot growth is compared to
                    edge.expect("trace", 60)
                series.append(st)
                lags += st["lag_ms"]
        if trace:
            edge.send(cmd="trace")
            traced_growth = edge.expect("trace", 60)["top"]
            for line in traced_growth:
                print("  tracemalloc growth after warm-up: " + line, file=sys.stderr)
        first, last = series[0], series[-1]
        span_s = last["at"] - first["at"]
        span_h = span_s / 3600.0
        done = sum(s["n_acked"] for s in series[1:])
        row("sessions completed in the measured half (n)", done, "count")
        row("sessions per hour", done / span_h, "per h")
        rss_pts = [(s["at"], s["rss"]) for s in series]
        slope, ci = _fit(rss_pts)
        row("edge RSS at the end of warm-up (%.0f s)" % warm_s, first["rss"], "MB")
        row("edge RSS at the end", last["rss"], "MB")
        # RSS moves in steps of pages and arenas: over a short run the interval can be
        # wider than the target, and then the run decides nothing (run it longer)
        decided = ci < RSS_SLOPE_TARGET_MB_H
        row("edge RSS slope after warm-up, fit over %.0f s (n=%d samples), 95 %% +-%.1f%s"
            % (span_s, len(rss_pts), ci, "" if decided else
               " (too wide to decide: --minutes 30)"),
            slope, "MB/h", "< %.0f MB/h" % RSS_SLOPE_TARGET_MB_H,
            (slope < RSS_SLOPE_TARGET_MB_H) if decided else None)
        mem0, mem1 = first["memory"], last["memory"]
        for key, label in (("py_blocks", "Python objects (allocated blocks)"),
                           ("traced", "Python allocations traced (tracemalloc)"),
                           ("malloc_used", "malloc in use"),
                           ("malloc_free", "malloc free, kept by the allocator"),
                           ("malloc_mmap", "malloc, mmapped blocks"),
                           ("sqlite", "SQLite's memory"),
                           ("rss_heap", "RSS of the main malloc heap ([heap])"),
                           ("rss_anon", "RSS of anonymous mappings (Python arenas, thread"
                                        " arenas, large blocks)"),
                           ("rss_file", "RSS of file mappings")):
            if mem1.get(key) is None:
                continue
            scale = 1.0 if key == "py_blocks" else 1e-6
            unit = "blocks" if key == "py_blocks" else "MB"
            s_slope, s_ci = _fit([(s["at"], s["memory"][key] * scale) for s in series])
            row("%s: warm-up end -> end" % label, mem1[key] * scale, unit)
            row("%s: slope after warm-up (95 %% +-%.1f)" % (label, s_ci), s_slope,
                unit + "/h")
        edge.send(cmd="trim")
        freed = edge.expect("trimmed", 60)["freed"]
        if freed is not None:
            row("RSS given back by malloc_trim(0) at the end", freed / 1e6, "MB")
        store_pts = [(s["at"], s["store"] / 1e6) for s in series]
        growth = _slope_per_h(store_pts)
        row("store size at the end (db + wal)", last["store"] / 1e6, "MB")
        # what the same sessions would add without retention: ~410 B a session row,
        # ~113 B a stored sample (docs/retention.md), samples thinned to one a minute
        unpruned = (done / span_h) * (410 + 113 * (1 + STAY_S[1] // 60)) / 1e6
        row("store growth per hour after warm-up (retention on)", growth, "MB/h",
            "< %.1f MB/h (10 %% of %.1f MB/h unpruned)" % (0.1 * unpruned, unpruned),
            growth < 0.1 * unpruned)
        row("retention passes during the run", last["retention_passes"], "count")
        wb = last["wb"] - first["wb"]
        row("bytes written per session (device, all edge writes)", wb / max(1, done), "B",
            "< 64 kB", wb / max(1, done) < 65536)
        if so:
            pw = last["pwrite_bytes"] - first["pwrite_bytes"]
            row("bytes SQLite wrote per session (WAL + checkpoints, all edge writes)",
                pw / max(1, done), "B")
            syncs = last["syncs"] - first["syncs"]
            row("fsyncs per session (all edge writes)", syncs / max(1, done), "count")
            row("fsyncs per second", syncs / span_s, "per s")
        row("write volume per day at this rate", wb / span_h * 24 / 1e9, "GB/day")
        if lags:
            row("event-loop lateness, median (n=%d)" % len(lags), statistics.median(lags), "ms")
            row("event-loop lateness, p99", _pct(lags, 99), "ms")
            row("event-loop lateness, worst", max(lags), "ms")
        sim.send(cmd="drain", timeout=90)
        drained = sim.expect("drained", 100)
        time.sleep(3.0)                      # the last stops acknowledged
        edge.send(cmd="final")
        final = edge.expect("final", 60)
        for s_id, tx, sess in final["acked"] + final["store"]:
            cloud.setdefault((s_id, tx), set()).add(sess)
        txs = [(s, str(t)) for s, t in drained["tx"] if t is not None]
        lost = sum(1 for k in txs if k not in cloud)
        doubled = sum(1 for c in cloud.values() if len(c) > 1)
        row("sessions started by the wallboxes (n)", len(txs), "count")
        row("sessions lost (neither acknowledged upstream nor in the store)", lost, "count",
            "= 0", lost == 0)
        row("sessions recorded twice", doubled, "count", "= 0", doubled == 0)
        row("machine load average (1 min) during the run, median / max",
            statistics.median(loads), "", None, None)
        rows[-1]["value"] = "%.1f / %.1f" % (statistics.median(loads), max(loads))
        row("edge started with", None, "")
        rows[-1]["value"] = ("MALLOC_ARENA_MAX=%s" % arena_max if arena_max is not None
                             else "default malloc") + (", tracemalloc %d frame(s)" % frames
                                                       if trace else "")
    except Exception as e:
        rows.append({"area": AREA, "case": case, "metric": "(case failed)", "value": None,
                     "unit": "", "target": None, "ok": False,
                     "error": "%s: %s" % (type(e).__name__, e)})
    finally:
        for proc in (sim, edge):
            if proc is not None:
                proc.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main(argv: list[str]) -> None:
    if argv and argv[0] == "edge":
        asyncio.run(edge_main(argv[1]))
    elif argv and argv[0] == "sim":
        asyncio.run(sim_main(int(argv[1]), int(argv[2])))
    elif argv and argv[0] == "writes":
        writes_main(argv[1])
    else:
        import argparse
        ap = argparse.ArgumentParser(prog="python -m bench.bench_soak")
        ap.add_argument("--minutes", type=float, default=None)
        ap.add_argument("--trace", action="store_true",
                        help="tracemalloc: what grew most between warm-up end and the end")
        ap.add_argument("--frames", type=int, default=1,
                        help="tracemalloc frames per allocation (more: slower, grouped by"
                             " traceback)")
        ap.add_argument("--arena-max", type=int, default=None,
                        help="run the edge with MALLOC_ARENA_MAX set to this")
        a = ap.parse_args(argv)
        for r in run(minutes=a.minutes, trace=a.trace, frames=a.frames,
                     arena_max=a.arena_max):
            print("%-55s %12s %-8s %-30s %s" % (r["metric"], r["value"], r["unit"],
                                                 r["target"] or "",
                                                 {True: "ok", False: "FAIL", None: ""}[r["ok"]])
                  + ("  " + r["error"] if r.get("error") else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
