import asyncio
import time

import pytest

from host_tools import demo_site
from host_tools.broker import Broker
from host_tools.cloud_peer import CloudPeer


async def wait_until(predicate, timeout_s: float = 20.0, step_s: float = 0.1) -> bool:
    """Poll until predicate() is true; False on timeout (the caller asserts)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step_s)
    return bool(predicate())


@pytest.fixture
def until():
    return wait_until


@pytest.fixture
def broker(tmp_path):
    """A real Mosquitto for the test, in its own directory and port."""
    b = Broker(workdir=str(tmp_path / "mq")).start()
    yield b
    b.cleanup()


@pytest.fixture
def cloud(broker):
    """The reference cloud peer serving the demo site's snapshot (a test module may
    define its own `cloud` with other lists)."""
    p = CloudPeer(port=broker.port, client_id="cloud")
    p.serve_snapshot[demo_site.SITE_ID] = demo_site.cloud_snapshot()
    p.start()
    yield p
    p.stop()
