"""The service gives free C-heap memory back now and then (edge/heap.py)."""
import asyncio
import ctypes
import logging

import pytest

from edge import heap


def test_glibc_trim_is_found_and_runs():
    try:
        ctypes.CDLL(None).malloc_trim
    except AttributeError:
        pytest.skip("not glibc")
    trim = heap.trimmer()
    assert trim is not None and trim() in (True, False)


async def test_trims_every_period_and_says_a_slow_trim_once(caplog):
    calls = []
    ticks = iter(range(0, 1000, 1))              # every trim "takes" 1 s on this clock

    def trim():
        calls.append(1)
        if len(calls) == 5:
            raise asyncio.CancelledError
        return True
    caplog.set_level(logging.INFO, logger="edge.heap")
    with pytest.raises(asyncio.CancelledError):
        await heap.trim_forever(every_s=0, trim=trim, clock=lambda: next(ticks))
    assert len(calls) == 5
    assert sum("returning free heap memory took" in r.message for r in caplog.records) == 1
