"""The CPython tests run the core's .py modules, the very files MicroPython runs.

Until 2026-12 the allocation was also compiled with Cython (docs/architecture.md,
"One core, pure Python"). A module left from that build in edge/core/ would win
the import over its .py source and test old code in silence, so the session stops
at once if one is there (`make test` deletes them before it starts pytest)."""
import importlib.machinery
from pathlib import Path

import pytest

CORE_DIR = Path(__file__).resolve().parent.parent / "edge" / "core"


def compiled_leftovers(core_dir: Path = CORE_DIR) -> list[str]:
    """Extension modules in the core's folder: each would shadow its .py module."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return sorted(p.name for p in core_dir.iterdir() if p.name.endswith(suffixes))


def pytest_configure(config):
    left = compiled_leftovers()
    if left:
        pytest.exit("edge/core holds compiled modules that would run instead of their .py source: %s; "
                    "delete them (`make deps` does)" % ", ".join(left), returncode=3)
