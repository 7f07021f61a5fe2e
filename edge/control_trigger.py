"""When the control step runs: on a new grid reading, on a session start or stop, and
on a floor when neither comes.

The meter poller and the control step used to run on two independent timers, so a
fresh reading waited 0 to one period for the next step. Now the reading itself wakes
the step. The floor (``control.interval_s``) is what keeps the fail-safe honest when
readings stop: the step still runs, judges the last reading by when the meter
answered (``MeterReading.at_s``) and goes fail-safe once that is too old. So the
floor is also pulled in to the moment the last reading turns stale, whatever the
floor is.

Session events wake the step too (a new car needs a limit, a car that left frees
current), but at most once per ``min_gap_s``: a hundred wallboxes starting at once
give a few steps, not a hundred.
"""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable


class StepTrigger:
    def __init__(self, floor_s: float, *, min_gap_s: float = 0.1,
                 clock: Callable[[], float] = time.time) -> None:
        self.floor_s = float(floor_s)
        self.min_gap_s = float(min_gap_s)
        self._clock = clock
        self._wake = asyncio.Event()
        self._reading = False           # a reading came since the last step began
        self._soon = False              # a session event came since the last step began
        self._stale_at: float | None = None   # clock time the last reading turns stale
        self.readings = 0               # readings that woke a step (for the live view, tests)
        self.steps = 0
        self.last_reason: str | None = None    # what woke the step now running / last run
        self.reasons = {"start": 0, "reading": 0, "session": 0, "floor": 0}

    def reading(self, answered_s: float, max_age_s: float) -> None:
        """A new grid reading, answered at ``answered_s`` (clock seconds): step now."""
        self.readings += 1
        self._stale_at = answered_s + max_age_s
        self._reading = True
        self._wake.set()

    def session_changed(self) -> None:
        """A session started or ended: step soon (coalesced by ``min_gap_s``)."""
        self._soon = True
        self._wake.set()

    def _timeout(self) -> float:
        wait = self.floor_s
        if self._stale_at is not None:
            # just after the reading turns stale, so that step sees it stale
            wait = min(wait, max(0.0, self._stale_at - self._clock()) + 0.01)
        return wait

    async def run(self, step: Callable[[], Awaitable[object]],
                  stopping: asyncio.Event) -> None:
        """Call ``step()`` whenever triggered, until ``stopping`` is set. A trigger that
        comes while a step runs gives one more step right after it (never lost, never
        queued twice)."""
        loop = asyncio.get_running_loop()
        last = float("-inf")
        first = True            # one step at once: the wallboxes learn the start-up state
        while not stopping.is_set():
            if not first:
                try:
                    await asyncio.wait_for(self._wake.wait(), self._timeout())
                except asyncio.TimeoutError:
                    pass
            if first:
                reason = "start"
                first = False
            elif self._reading:
                reason = "reading"
            elif self._soon:
                reason = "session"
                gap = last + self.min_gap_s - loop.time()
                if gap > 0:
                    await asyncio.sleep(gap)    # a reading arriving meanwhile is taken too
            else:
                reason = "floor"
            self._wake.clear()
            self._reading = self._soon = False
            if self._stale_at is not None and self._clock() >= self._stale_at:
                self._stale_at = None   # this step sees it stale; then the floor paces
            self.reasons[reason] += 1
            self.last_reason = reason
            self.steps += 1
            last = loop.time()
            await step()
