"""Start-up work of many wallboxes at once, a few pieces per event-loop turn.

The OCPP gateway, the meter poller and the control step share one asyncio loop. The
loop runs, per turn, everything that became ready, in order. A meter reading needs
several turns (request sent, reply read, decoded, control step woken), each waiting
for the whole turn before it. When hundreds of wallboxes connect at once (after a
power cut or an edge restart), every turn held hundreds of handshakes,
BootNotifications and after-boot calls; turns took hundreds of milliseconds and the
meter's few turns took seconds: the reading went stale and a site with a healthy
meter went fail-safe.

``TurnPacer.turn()`` is awaited before each piece of start-up work (a handshake, a
frame from a wallbox that is still starting, one call of the after-boot sequence, one
local-list push); at most ``per_turn`` pieces begin per loop turn, the others wait in
arrival order. Everything else (meter polls, the control step and the limits it sends,
the cloud link, wallboxes already running) is never paced, so it waits at most one
short turn per step whatever the burst.

Why per turn and not "at most N wallboxes starting at once": what slows the control
path is work per turn, and a wallbox that is slow to answer costs the edge nothing
while it thinks. A cap on concurrent start-up sequences would let a few slow wallboxes
hold up all the others (500 wallboxes, 12 calls each, 1 s per answer, 16 at a time:
six minutes); pacing per turn spends the CPU the loop has and lets the wallboxes take
their time in parallel. On an idle loop a turn is a few microseconds, so a lone
wallbox waits for nothing noticeable.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque

log = logging.getLogger(__name__)

# A queue this long is a burst worth a line in the log (one when it starts, one when it
# is over): the wallboxes' start-up then takes longer than usual, on purpose.
BURST_REPORT_AT = 100


class TurnPacer:
    def __init__(self, per_turn: int = 1, name: str = "wallbox start-up") -> None:
        if not isinstance(per_turn, int) or isinstance(per_turn, bool) or per_turn < 1:
            raise ValueError("per_turn: must be a whole number >= 1 (got %r)" % (per_turn,))
        self.per_turn = per_turn
        self.name = name
        self._waiting: deque[asyncio.Future] = deque()
        self._dispatching = False
        self._burst: list | None = None   # [began at (loop time), granted then, most waiting]
        # what a burst looked like (metrics, tests, the burst benchmark)
        self.granted = 0          # pieces of work let through, in total
        self.peak_waiting = 0     # the longest queue seen
        self.busiest_turn = 0     # the most pieces let through in one turn

    async def turn(self) -> None:
        """Wait until this piece of start-up work may begin (first come, first served).

        Always waits at least one turn, so the pieces of one turn are counted exactly;
        a cancelled waiter gives its place up.
        """
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiting.append(fut)
        queued = len(self._waiting)
        if queued > self.peak_waiting:
            self.peak_waiting = queued
        if self._burst is not None:
            self._burst[2] = max(self._burst[2], queued)
        elif queued >= BURST_REPORT_AT:
            self._burst = [loop.time(), self.granted, queued]
            log.info("%s: %d pieces of work queued; they go %d per event-loop turn, so the"
                     " meter and the control loop keep their pace", self.name, queued,
                     self.per_turn)
        if not self._dispatching:
            self._dispatching = True
            loop.call_soon(self._dispatch, loop)
        await fut

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        # Runs once per turn while anyone waits. Callbacks scheduled during a turn run
        # in the next one, so the waiters woken here all begin in the next turn, before
        # this is called again.
        woken = 0
        while self._waiting and woken < self.per_turn:
            fut = self._waiting.popleft()
            if fut.done():          # its task was cancelled while waiting
                continue
            fut.set_result(None)
            woken += 1
        self.granted += woken
        if woken > self.busiest_turn:
            self.busiest_turn = woken
        if self._waiting:
            loop.call_soon(self._dispatch, loop)
        else:
            self._dispatching = False
            if self._burst is not None:
                began, granted, most = self._burst
                self._burst = None
                log.info("%s: burst over after %.1f s (%d pieces, at most %d waiting)",
                         self.name, loop.time() - began, self.granted - granted, most)

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiting if not f.done())

    def stats(self) -> dict[str, int]:
        return {"per_turn": self.per_turn, "waiting": self.waiting,
                "peak_waiting": self.peak_waiting, "granted": self.granted,
                "busiest_turn": self.busiest_turn}
