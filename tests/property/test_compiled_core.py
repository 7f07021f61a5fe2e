"""The compiled core gives the very results of its .py source.

Every CPython test runs against the compiled core, and `make test` runs the
core's tests once more against the .py modules; this one compares the two
deciamp for deciamp over thousands of cycles of random sites (limits, power
limits, phase switching, rotation, sessions coming and going, bad samples).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

from edge import compiled_core

REPO = Path(__file__).resolve().parents[2]


def _replay(pure: bool, first: int, count: int) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop(compiled_core.PURE_ENV, None)
    if pure:
        env[compiled_core.PURE_ENV] = "1"
    out = subprocess.run([sys.executable, str(REPO / "tests/property/alloc_replay.py"), str(first), str(count)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=True)
    return out.stdout.splitlines()


def test_the_compiled_allocation_equals_the_python_one():
    assert not compiled_core.stale(), "compiled core older than its source: run `make fastcore`"
    compiled = _replay(False, 0, 1500)
    pure = _replay(True, 0, 1500)
    assert json.loads(compiled[0])["compiled"] == sorted(compiled_core.HOT), \
        "the compiled core is not built: run `make fastcore` (needs a C compiler)"
    assert json.loads(pure[0])["compiled"] == []
    assert len(compiled) > 15000     # thousands of cycles, not a handful
    for n, (a, b) in enumerate(zip(compiled[1:], pure[1:])):
        assert a == b, "cycle %d differs:\ncompiled %s\npure     %s" % (n, a, b)
    assert len(compiled) == len(pure)
