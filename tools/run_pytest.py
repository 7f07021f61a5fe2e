"""Runs pytest and refuses to pass when no test ran (pytest exit 5)."""
import sys

import pytest

code = pytest.main(sys.argv[1:])
if code == pytest.ExitCode.NO_TESTS_COLLECTED:
    print("pytest collected no tests: treating that as a failure", file=sys.stderr)
    sys.exit(1)
sys.exit(int(code))
