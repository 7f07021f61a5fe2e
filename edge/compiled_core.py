"""The core's hot modules, compiled on CPython: which are, whether they are current,
and how to run without them.

The allocation runs every cycle for every session. On CPython, setup.py compiles
the modules named in HOT with Cython from their own .py source, plus a .pxd file
beside allocation.py that gives C types to its loop counters and lists. Nothing
is written twice: the .py file is the only source, MicroPython runs it as it is,
and CPython without a C compiler falls back to it (msgpack and aiohttp do the
same with their extensions). A compiled module sits beside its source and wins
the import, so one built from an older source would silently run old code:
``stale()`` says which, the test suite refuses to run on them, and the service
logs a warning.

    python -m edge.compiled_core            what runs compiled, what is stale
    python -m edge.compiled_core --require  exit 1 unless all of HOT run compiled and current
    EDGE_PURE_CORE=1                        run the plain .py modules (tests, bench, service)
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

CORE_DIR = Path(__file__).resolve().parent / "core"
HOT = ("allocation", "alloc_inputs", "alloc_ramp", "alloc_capacity", "alloc_state")
PURE_ENV = "EDGE_PURE_CORE"


def _built(name: str) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = CORE_DIR / (name + suffix)
        if path.exists():
            return path
    return None


def built() -> dict[str, Path]:
    """The hot modules that have a compiled file beside their source."""
    out = {}
    for name in HOT:
        path = _built(name)
        if path is not None:
            out[name] = path
    return out


def in_source_tree() -> bool:
    """A development checkout (setup.py beside the package), where a compiled module can
    fall behind its source. An installed wheel is never rebuilt in place and unpacks its
    files in no order worth comparing (a .so may land a few ms before its .py)."""
    return (CORE_DIR.parent.parent / "setup.py").exists()


def stale() -> list[str]:
    """Compiled modules older than their .py or .pxd source (rebuild: make fastcore);
    always none in an installed package (see in_source_tree)."""
    if not in_source_tree():
        return []
    out = []
    for name, path in built().items():
        sources = [CORE_DIR / (name + ".py"), CORE_DIR / (name + ".pxd")]
        newest = max(s.stat().st_mtime for s in sources if s.exists())
        if path.stat().st_mtime < newest:
            out.append(name)
    return out


def running() -> dict[str, bool]:
    """For each hot module: whether the imported one is the compiled one."""
    out = {}
    for name in HOT:
        mod = importlib.import_module("edge.core." + name)
        out[name] = _is_compiled(mod)
    return out


def _is_compiled(mod: ModuleType) -> bool:
    return not str(getattr(mod, "__file__", "")).endswith(".py")


class _PureFinder(importlib.abc.MetaPathFinder):
    """Finds edge.core modules as their .py source, ahead of any compiled file."""

    def find_spec(self, fullname, path=None, target=None):   # type: ignore[override]
        prefix = "edge.core."
        if not fullname.startswith(prefix) or "." in fullname[len(prefix):]:
            return None
        source = CORE_DIR / (fullname[len(prefix):] + ".py")
        if not source.exists():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def use_pure_core() -> None:
    """Import edge.core from its .py files from now on. Call before the core is
    imported: a module already imported stays as it is (checked)."""
    loaded = [n for n in HOT if "edge.core." + n in sys.modules and _is_compiled(sys.modules["edge.core." + n])]
    if loaded:
        raise RuntimeError("compiled core modules already imported: %s; call use_pure_core() first"
                           % ", ".join(loaded))
    if not any(isinstance(f, _PureFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PureFinder())


def pure_requested() -> bool:
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if pure_requested():
        use_pure_core()
    run = running()
    old = stale()
    for name in HOT:
        state = "compiled" if run[name] else "pure Python"
        if name in old:
            state += " (STALE: older than its source; run `make fastcore`)"
        print("edge.core.%-15s %s" % (name, state))
    if "--require" in args and (not all(run.values()) or old):
        print("the compiled core is missing or stale: run `make fastcore` (needs a C compiler and Cython)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
