# Allocation benchmark scenario; runs on CPython and MicroPython alike.
#   node tools/mp/mp.mjs script bench/mp_alloc_bench.py [quick]
# prints one JSON line: {"impl": ..., "cases": [{"connectors", "runs", "median_ms", "p99_ms"}]}
# bench/bench_alloc.py imports site() and measure() from here for the CPython figures.
import json
import sys
import time

from edge.core.alloc_config import AllocConfig
from edge.core.allocation import allocate
from edge.core.circuits import CircuitTree


class Meter:
    def __init__(self, current_da, at_s):
        self.current_da = current_da
        self.at_s = at_s


class Lcg:
    # Same numbers on every interpreter (MicroPython's random differs).
    def __init__(self, seed):
        self.x = seed

    def next(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return self.x % n


def site(n):
    """n connectors, two per station, up to 50 per charging group; a site at its limit.

    70 % three-phase (a fifth of them can switch to one phase), 30 % single-phase
    on rotated wiring; a fifth of the sessions prioritised; half report their draw.
    The grid gives about a third of what the cars could take, so limits bind and
    the water level sits between minimum and maximum: the expensive case.
    """
    rnd = Lcg(7)
    tree = CircuitTree()
    tree.add_circuit("grid", None, max(320, n * 130), None, 10)
    sessions = []
    per_group = 50
    stations = (n + 1) // 2
    x = 0
    for s in range(stations):
        if s % (per_group // 2) == 0:
            gid = "g%d" % (s // (per_group // 2))
            tree.add_circuit(gid, "grid", per_group * 100)
        sid = "st%d" % s
        tree.add_circuit(sid, gid, 320)
        for c in (1, 2):
            if x >= n:
                break
            three = rnd.next(10) < 7
            if three:
                wiring = ((0, 1, 2), (1, 2, 0), (2, 0, 1))[rnd.next(3)]
                tree.add_connector((sid, c), sid, 3, wiring, 60, 320, rnd.next(5) == 0)
            else:
                tree.add_connector((sid, c), sid, 1, (rnd.next(3),), 60, 320)
            drawn = None
            if rnd.next(2) == 0:
                d = 40 + rnd.next(200)
                drawn = (d, d, d) if three else tuple(d if p == wiring_p(tree, x) else 0 for p in range(3))
            sessions.append({"key": (sid, c), "session_id": "s%d" % x, "started_s": rnd.next(3600),
                             "prioritised": rnd.next(5) == 0, "drawn_da": drawn, "controllable": True})
            x += 1
    return tree, sessions


def wiring_p(tree, x):
    return tree.connectors[x].wiring[0]


def _clock():
    if hasattr(time, "ticks_us"):
        t0 = time.ticks_us()
        return lambda: time.ticks_diff(time.ticks_us(), t0) / 1000.0
    return lambda: time.perf_counter() * 1000.0


def measure(n, runs, batch=1):
    """Times of full allocate() cycles (ms), steady state: state carried, clock advancing.

    Each of ``runs`` samples times ``batch`` cycles and keeps the mean: MicroPython's
    WebAssembly build ticks in whole milliseconds, too coarse for one small cycle.
    """
    tree, sessions = site(n)
    tree.compile()
    cfg = AllocConfig(rotate_after_s=600)
    rnd = Lcg(11)
    base = n * 10
    now = 100000
    state = allocate(tree, sessions, Meter([base, base, base], now), now, None, cfg).state
    clock = _clock()
    times = []
    for _ in range(runs):
        t0 = clock()
        for _ in range(batch):
            now += 1
            jitter = n * 5 + 1
            meter = Meter([base + rnd.next(jitter), base + rnd.next(jitter), base + rnd.next(jitter)], now)
            r = allocate(tree, sessions, meter, now, state, cfg)
            state = r.state
        times.append((clock() - t0) / batch)
    times.sort()
    return {"connectors": n, "runs": runs, "batch": batch, "median_ms": times[len(times) // 2],
            "p99_ms": times[min(len(times) - 1, (len(times) * 99) // 100)],
            "paused": len(r.status["paused"])}


def main(quick):
    cases = []
    for n, runs, batch in ((10, 30, 50), (100, 30, 5), (1000, 20, 1)):
        cases.append(measure(n, runs // 3 if quick else runs, batch))
    impl = sys.implementation.name
    print(json.dumps({"impl": impl, "cases": cases}))


def _args():
    # tools/mp/mp.mjs hands script arguments over as mp_args.ARGV (no sys.argv there).
    try:
        import mp_args
        return mp_args.ARGV[1:]
    except ImportError:
        return getattr(sys, "argv", [])[1:]


if __name__ == "__main__" or sys.implementation.name == "micropython":
    main("quick" in _args())
