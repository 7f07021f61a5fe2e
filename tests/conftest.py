"""The CPython tests run the core's .py modules, the very files MicroPython runs.

Until 2026-12 the allocation was also compiled with Cython (docs/architecture.md,
"One core, pure Python"). A module left from that build in edge/core/ would win
the import over its .py source and test old code in silence, so the session stops
at once if one is there (`make test` deletes them before it starts pytest).

Hypothesis profiles. A property test draws new random cases on every run, so a
CI run could fail on a case nobody had seen before, for a bug as old as the
code, and pass when run again: a red build that says nothing about the commit
it tested. So the two kinds of run differ:
  ci   derandomize=True: the cases follow from each test's source, the same on
       every run of one commit; no example database (a clean clone has none);
       print_blob=True, so a failure prints the @reproduce_failure line that
       replays it anywhere. A property then fails in CI only when the commit
       changed the code under test, the test, or an @example it carries.
  dev  random cases on every run, failures kept in .hypothesis/ and tried first
       next time; print_blob=True too. This is where new cases are found: every
       local pytest run explores. A failure found here becomes an @example on
       the property (and, for the core, a plain test in tests/core that runs
       under MicroPython too) in the commit that fixes it, so CI runs it from
       then on.
HYPOTHESIS_PROFILE=ci|dev picks one (`pytest --hypothesis-profile` wins over
both); without it, ci when CI is set (GitHub Actions, GitLab, ... set it) and
dev elsewhere. `make test` (which .ci/run calls) sets HYPOTHESIS_PROFILE=ci unless
it is given, so the runner need not set CI. Neither has a deadline or the too_slow health check: on a shared
2-core machine those are timed assertions (speed is for `make bench`).
Per-test @settings (max_examples, ...) apply under both."""
import importlib.machinery
from pathlib import Path

import pytest

import tests.hypothesis_profiles  # noqa: F401  registers and loads the profile (above)

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
