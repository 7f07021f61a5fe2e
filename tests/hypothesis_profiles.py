"""The Hypothesis profiles, registered and loaded once at import (tests/conftest.py
imports this first and says why there are two)."""
import os

from hypothesis import HealthCheck, settings

# Both from Hypothesis's own defaults: a profile made without a parent inherits the
# profile loaded at the time, which is Hypothesis's built-in "ci" when CI is set.
_UNTIMED = settings(settings.get_profile("default"), deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", _UNTIMED, derandomize=True, database=None)
settings.register_profile("dev", _UNTIMED)


def hypothesis_profile(env=os.environ) -> str:
    """The profile for this run (tests/conftest.py says how it is chosen)."""
    named = env.get("HYPOTHESIS_PROFILE")
    if named:
        return named
    return "ci" if env.get("CI", "").lower() not in ("", "0", "false", "no") else "dev"


settings.load_profile(hypothesis_profile())
