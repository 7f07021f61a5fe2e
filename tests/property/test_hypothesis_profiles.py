"""The Hypothesis profile a run gets (tests/conftest.py): CI draws the same cases on
every run of a commit, local runs explore."""
from hypothesis import given, settings, strategies as st

from tests.hypothesis_profiles import hypothesis_profile


def test_ci_is_chosen_by_name_or_by_the_ci_variable_and_dev_elsewhere():
    assert hypothesis_profile({}) == "dev"
    assert hypothesis_profile({"CI": "true"}) == "ci"
    assert hypothesis_profile({"CI": "1"}) == "ci"
    assert hypothesis_profile({"CI": "false"}) == "dev"
    assert hypothesis_profile({"CI": ""}) == "dev"
    assert hypothesis_profile({"HYPOTHESIS_PROFILE": "ci"}) == "ci"
    assert hypothesis_profile({"HYPOTHESIS_PROFILE": "dev", "CI": "true"}) == "dev"


def _drawn_under(profile):
    seen = []

    @settings(settings.get_profile(profile), max_examples=30)
    @given(st.integers(0, 10 ** 9))
    def record(x):
        seen.append(x)

    record()
    return seen


def test_the_ci_profile_draws_the_same_cases_every_run_and_keeps_no_database():
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.database is None and ci.print_blob and ci.deadline is None
    first = _drawn_under("ci")
    assert len(set(first)) > 10     # real cases, not one value repeated
    assert _drawn_under("ci") == first


def test_the_dev_profile_explores_and_keeps_what_failed_even_under_ci():
    # Made from Hypothesis's defaults, not from whatever profile was loaded first
    # (Hypothesis loads its own derandomized "ci" where CI is set).
    dev = settings.get_profile("dev")
    assert not dev.derandomize and dev.database is not None
    assert dev.print_blob and dev.deadline is None
