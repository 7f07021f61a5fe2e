"""Simulated time for the wallbox simulator.

Everything the simulated world does over time (meter samples, heartbeats, EV
arrivals, the slow response of a car to a new limit) reads and waits on one
clock object, so a test can drive time by hand and a demo can run faster than
real time. Network retries are not simulated time and use asyncio directly.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import datetime, timezone


def iso(at_s: float) -> str:
    """OCPP timestamp (UTC, milliseconds, 'Z')."""
    dt = datetime.fromtimestamp(at_s, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def parse_iso(text: str) -> float:
    """Parse an OCPP date-time; raises ValueError naming the text."""
    if not isinstance(text, str):
        raise ValueError("not a date-time: %r" % (text,))
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not a date-time: %r" % (text,)) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


class SimClock:
    """Wall-clock based time, optionally running `speed` times faster.

    `now()` starts at `start_s` (default: the real time) and advances `speed`
    simulated seconds per real second; `sleep(s)` waits `s` simulated seconds.
    """

    def __init__(self, speed: float = 1.0, start_s: float | None = None,
                 real_time=time.time, real_monotonic=time.monotonic) -> None:
        if not speed > 0:
            raise ValueError("speed: must be > 0 (got %r)" % (speed,))
        self.speed = float(speed)
        self._t0 = real_monotonic()
        self._mono = real_monotonic
        self._start = real_time() if start_s is None else float(start_s)

    def now(self) -> float:
        return self._start + (self._mono() - self._t0) * self.speed

    def __call__(self) -> float:
        return self.now()

    async def sleep(self, sim_s: float) -> None:
        await asyncio.sleep(max(0.0, sim_s) / self.speed)


class ManualClock:
    """Time that only moves when `advance()` is called (tests).

    Sleepers wake in deadline order when time passes their deadline.
    """

    def __init__(self, start_s: float = 1_700_000_000.0) -> None:
        self._now = float(start_s)
        self._sleepers: list = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def __call__(self) -> float:
        return self._now

    @property
    def pending(self) -> int:
        """How many tasks are asleep on this clock (tests wait for loops to settle)."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def sleep(self, sim_s: float) -> None:
        if sim_s <= 0:
            await asyncio.sleep(0)
            return
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + sim_s, next(self._seq), fut))
        await fut

    async def advance(self, sim_s: float, step_s: float | None = None) -> None:
        """Move time forward, waking sleepers on the way.

        With `step_s`, time moves in steps so periodic tasks fire at each step
        (e.g. one meter sample per interval) and get to run in between.
        """
        target = self._now + sim_s
        step = sim_s if step_s is None else step_s
        # Tasks just created must get to their sleep() before time moves.
        for _ in range(5):
            await asyncio.sleep(0)
        while True:
            nxt = min(target, self._now + step)
            while self._sleepers and self._sleepers[0][0] <= nxt:
                deadline, _, fut = heapq.heappop(self._sleepers)
                self._now = max(self._now, deadline)
                if not fut.done():
                    fut.set_result(None)
                # Let the woken task run (and maybe sleep again) before going on.
                for _ in range(5):
                    await asyncio.sleep(0)
            self._now = nxt
            for _ in range(5):
                await asyncio.sleep(0)
            if self._now >= target:
                return
