"""What the allocation's reasons cost: `Allocation.reasons()` (the dicts and texts,
built only when the API, the page or `make run` asks) on the bench site of
bench_alloc, after a full allocate() cycle. The recording during the cycle itself
(two lists, one number per paused session) is inside bench_alloc's allocate()
figures."""
from __future__ import annotations

import time

from bench.mp_alloc_bench import Meter, site
from edge.core.alloc_config import AllocConfig
from edge.core.allocation import allocate


def _case(n: int, runs: int) -> list[dict]:
    tree, sessions = site(n)
    cfg = AllocConfig(rotate_after_s=600)
    r = allocate(tree, sessions, Meter([n * 10] * 3, 1000), 1000, None, cfg)
    times = []
    state = r.state
    for k in range(runs):
        r = allocate(tree, sessions, Meter([n * 10] * 3, 1001 + k), 1001 + k, state, cfg)
        state = r.state
        t0 = time.perf_counter()
        r.reasons()
        times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return [{"area": "alloc", "case": "%d connectors" % n, "metric": "reasons() %s (on request)" % name,
             "value": round(v, 3), "unit": "ms", "target": None, "ok": None, "runs": runs}
            for name, v in (("median", times[len(times) // 2]),
                            ("p99", times[min(len(times) - 1, len(times) * 99 // 100)]))]


def run(quick: bool = False) -> list[dict]:
    rows = []
    for n, runs in ((100, 50 if quick else 200), (1000, 20 if quick else 100)):
        rows.extend(_case(n, runs))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
