"""Which core the CPython tests run: the compiled one, as installed (see
edge/compiled_core.py), or with EDGE_PURE_CORE=1 the plain .py modules. `make test`
runs the core's tests both ways; MicroPython runs the .py modules anyway."""
import pytest

from edge import compiled_core

if compiled_core.pure_requested():
    compiled_core.use_pure_core()


def pytest_configure(config):
    if compiled_core.pure_requested():
        return
    old = compiled_core.stale()
    if old:
        pytest.exit("compiled core modules are older than their source (%s): run `make fastcore`, "
                    "or set EDGE_PURE_CORE=1 to test the .py modules" % ", ".join(old), returncode=3)


def pytest_report_header(config):
    run = compiled_core.running()
    if all(run.values()):
        return "edge core: compiled (%s)" % ", ".join(run)
    if not any(run.values()):
        return "edge core: pure Python"
    return "edge core: partly compiled (%s)" % ", ".join(n for n, c in run.items() if c)
