import pytest

from tests.integration.conftest import wait_until


@pytest.fixture
def until():
    """wait_until of the integration tests: polls a predicate, False when the guard ran out."""
    return wait_until
