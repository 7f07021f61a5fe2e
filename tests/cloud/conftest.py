"""Fixtures for the cloud tests: a real Mosquitto per test on a free loopback port.

Waits in these tests are generous upper bounds that only stop a hung test; they are
not speed assertions.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Callable

import pytest

from host_tools.broker import Broker

REPO = Path(__file__).resolve().parents[2]
HANG_GUARD_S = 20.0


@pytest.fixture
def broker(tmp_path):
    b = Broker(workdir=str(tmp_path / "broker"))
    b.start()
    try:
        yield b
    finally:
        b.cleanup()


async def eventually(predicate: Callable[[], bool], what: str, timeout_s: float = HANG_GUARD_S) -> None:
    """Polls ``predicate`` on the loop until true; fails naming ``what`` if it never is."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("never happened: " + what)
        await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def _quiet_paho():
    logging.getLogger("paho").setLevel(logging.WARNING)
    yield
