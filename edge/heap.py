"""Gives the C heap's free memory back to the system now and then (glibc only).

Measured with the soak benchmark (docs/retention.md, "Memory"): after warm-up the
edge's Python objects, SQLite's memory and the bounded per-station structures stay
flat, but glibc's main heap keeps the chunks they freed. Freed chunks sit between live
ones, the heap never shrinks from its top, and its resident size creeps up under
steady traffic. ``malloc_trim(0)`` returns every whole free page inside the heap to the
kernel (madvise), which takes a few milliseconds for a heap of tens of MB.

Elsewhere (musl, macOS, MicroPython) there is no such call and nothing is done.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import time
from typing import Callable

log = logging.getLogger(__name__)

TRIM_EVERY_S = 60.0
# A trim longer than this is said once: the event loop waited for it.
SLOW_TRIM_S = 0.02


def trimmer() -> Callable[[], bool] | None:
    """``malloc_trim(0)`` as a callable (True when memory went back), or None."""
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return lambda: bool(fn(0))


async def trim_forever(every_s: float = TRIM_EVERY_S,
                       trim: Callable[[], bool] | None = None,
                       clock: Callable[[], float] = time.monotonic) -> None:
    """Trim the heap every ``every_s`` until cancelled; returns at once without glibc."""
    trim = trim or trimmer()
    if trim is None:
        return
    said_slow = False
    while True:
        await asyncio.sleep(every_s)
        started = clock()
        trim()
        took = clock() - started
        if took > SLOW_TRIM_S and not said_slow:
            said_slow = True
            log.info("returning free heap memory took %.0f ms (said once)", took * 1000)
