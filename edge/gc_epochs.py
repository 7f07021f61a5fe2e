"""Keeping the garbage collector's full collections short on a big site.

CPython's full collection walks every tracked object; on a gateway serving 2,000
wallboxes that is well over a million (connections, protocol objects, sessions) and
one walk held the event loop for 170 ms (bench_loop). Nearly all of them live as
long as the service. ``gc.freeze()`` moves the objects alive at that moment out of
the collector's sight, so a full collection walks only what was made since.

When: once after start-up (``EdgeService(freeze_gc=True)``), again when the site has
come up (every configured wallbox connected and through its start-up, or ``settle_by_s``
after start, whichever is first: connections are made after start-up), then every ``every_s``. Each time
the frozen set is released and collected first (``unfreeze(); collect(); freeze()``):
so garbage is never frozen, and an object that was frozen and later became garbage
in a reference cycle (a wallbox's old connection) is freed within ``every_s``. That
collection is the one long pause, once per epoch instead of whenever the collector
decides.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Callable

log = logging.getLogger(__name__)


def refreeze() -> float:
    """Release, collect, freeze again; returns the milliseconds it took."""
    t0 = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return (time.perf_counter() - t0) * 1000.0


async def run(site_up: Callable[[], bool], *, settle_by_s: float = 300.0,
              every_s: float = 3600.0, check_s: float = 5.0) -> None:
    """The epochs, until cancelled. ``site_up()``: every configured wallbox connected."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    last: float | None = None
    while True:
        await asyncio.sleep(check_s)
        now = loop.time()
        if last is None:
            if not (site_up() or now - started >= settle_by_s):
                continue
        elif now - last < every_s:
            continue
        ms = refreeze()
        last = loop.time()
        log.debug("gc epoch: %d objects frozen (%.0f ms)", gc.get_freeze_count(), ms)
