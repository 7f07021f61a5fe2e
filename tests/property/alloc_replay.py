"""Replays seeded random sites through many allocation cycles and prints every
result as one JSON line per cycle. tests/property/test_compiled_core.py runs it once
with the compiled core and once with EDGE_PURE_CORE=1: the lines must be equal.

    python tests/property/alloc_replay.py FIRST_SEED COUNT
"""
import json
import random
import sys

from edge import compiled_core

if compiled_core.pure_requested():
    compiled_core.use_pure_core()

from edge.core.alloc_config import AllocConfig  # noqa: E402 (after the choice of core)
from edge.core.allocation import allocate  # noqa: E402
from edge.core.circuits import CircuitTree  # noqa: E402

ROT = ((0, 1, 2), (1, 2, 0), (2, 0, 1))


class Meter:
    def __init__(self, current_da, at_s):
        self.current_da = current_da
        self.at_s = at_s


def site(rnd):
    tree = CircuitTree(230)
    tree.add_circuit("grid", None, tuple(rnd.randint(0, 900) for _ in range(3)),
                     rnd.choice([None, rnd.randint(1000, 60000)]), rnd.randint(0, 30))
    keys = []
    for g in range(rnd.randint(1, 4)):
        gid = "g%d" % g
        tree.add_circuit(gid, "grid", rnd.choice([None, rnd.randint(0, 600),
                                                  tuple(rnd.choice([None, rnd.randint(0, 600)]) for _ in range(3))]),
                         rnd.choice([None, None, rnd.randint(1000, 40000)]))
        for s in range(rnd.randint(1, 4)):
            sid = "%s-s%d" % (gid, s)
            tree.add_circuit(sid, gid, rnd.choice([None, rnd.randint(0, 400)]))
            for c in range(rnd.randint(1, 3)):
                three = rnd.random() < 0.6
                lo = rnd.randint(0, 100)
                tree.add_connector((sid, c + 1), sid, 3 if three else 1,
                                   rnd.choice(ROT) if three else (rnd.randint(0, 2),),
                                   lo, rnd.randint(max(lo, 1), 320), three and rnd.random() < 0.4)
                keys.append((sid, c + 1))
    return tree, keys


def replay(seed):
    rnd = random.Random(seed)
    tree, keys = site(rnd)
    cfg = AllocConfig(rotate_after_s=rnd.choice([0, 30, 300]), phase_hold_s=rnd.randint(0, 60),
                      raise_holdoff_s=rnd.randint(0, 20))
    sessions = {}
    state = None
    now = 1000
    lines = []
    for _ in range(rnd.randint(3, 25)):
        now += rnd.randint(1, 40)
        for key in keys:
            x = rnd.random()
            if key not in sessions and x < 0.4:
                sessions[key] = {"key": list(key), "session_id": "s%d" % rnd.randint(0, 10 ** 6),
                                 "started_s": now - rnd.randint(0, 60), "prioritised": rnd.random() < 0.3,
                                 "drawn_da": None, "controllable": rnd.random() < 0.9}
            elif key in sessions and x < 0.1:
                del sessions[key]
            elif key in sessions and x < 0.5:
                sessions[key]["drawn_da"] = [rnd.randint(0, 320) for _ in range(3)]
                sessions[key]["drawn_at_s"] = now - rnd.randint(0, 30)
        grid = [rnd.randint(0, 900) for _ in range(3)]
        limit = rnd.choice([None, {"max_da": rnd.randint(0, 800), "expires_s": now + 60}])
        live = [dict(s) for s in sessions.values()]
        rnd.shuffle(live)
        r = allocate(tree, live, Meter(grid, now), now, state, cfg, limit)
        state = r.state
        memos = {repr(k): [m.session_id, m.run_since_s, m.paused_since_s, m.mode, m.switched_s]
                 for k, m in state.sessions.items()}
        lines.append(json.dumps({
            "limits": sorted((repr(k), v) for k, v in r.limits.items()),
            "changed": sorted((repr(k), v) for k, v in r.changed.items()),
            "targets": sorted((repr(k), v) for k, v in r.targets.items()),
            "status": {k: (repr(v) if k in ("paused", "one_phase") else v) for k, v in r.status.items()},
            "memos": memos,
            "reasons": sorted((repr(k), v["code"], v["circuit"], v["phase"], v["left_da"])
                              for k, v in r.reasons().items())}, sort_keys=True))
    return lines


def main(argv):
    first, count = int(argv[0]), int(argv[1])
    run = compiled_core.running()
    print(json.dumps({"compiled": sorted(n for n, c in run.items() if c)}))
    for seed in range(first, first + count):
        for line in replay(seed):
            print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
