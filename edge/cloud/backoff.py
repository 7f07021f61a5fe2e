"""Reconnect delays for the cloud link: exponential growth, capped, with jitter.

Why jitter: after a broker restart every site of a fleet loses its connection at the
same instant; without jitter they would all come back in lock-step waves. Each delay
is drawn uniformly from the upper half of the current ceiling ("equal jitter"), so a
site never retries hot (delay >= ceiling / 2) yet the fleet spreads out.

Why a stability window: a broker that accepts the TCP connection and then drops it
(bad ACL, overload) would otherwise reset the backoff on every short-lived success and
the site would hammer it at the base delay. The attempt counter only resets once a
connection has stayed up for ``stable_s``.
"""
from __future__ import annotations

import random
import time
from typing import Callable, Optional


class Backoff:
    def __init__(
        self,
        base_s: float = 1.0,
        cap_s: float = 60.0,
        factor: float = 2.0,
        stable_s: float = 30.0,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not base_s > 0:
            raise ValueError("base_s: must be > 0 (got %r)" % (base_s,))
        if not cap_s >= base_s:
            raise ValueError("cap_s: must be >= base_s (got %r)" % (cap_s,))
        if not factor >= 1:
            raise ValueError("factor: must be >= 1 (got %r)" % (factor,))
        self.base_s = float(base_s)
        self.cap_s = float(cap_s)
        self.factor = float(factor)
        self.stable_s = float(stable_s)
        self._rng = rng
        self._clock = clock
        self.attempts = 0
        self._connected_at: Optional[float] = None

    def ceiling(self) -> float:
        """Upper bound of the next delay (before jitter)."""
        # Bounded exponent: factor ** attempts would overflow a float after ~1000 failures.
        ceiling = self.base_s
        for _ in range(self.attempts):
            ceiling *= self.factor
            if ceiling >= self.cap_s:
                return self.cap_s
        return min(ceiling, self.cap_s)

    def next_delay(self) -> float:
        """Delay before the next attempt; each call counts as one failed attempt."""
        ceiling = self.ceiling()
        self.attempts += 1
        return ceiling / 2.0 + self._rng() * ceiling / 2.0

    def connected(self) -> None:
        """The link is up; the counter resets only if it stays up (see module doc)."""
        self._connected_at = self._clock()

    def disconnected(self) -> None:
        if self._connected_at is not None:
            if self._clock() - self._connected_at >= self.stable_s:
                self.attempts = 0
            self._connected_at = None

    def reset(self) -> None:
        self.attempts = 0
        self._connected_at = None
