"""Handshake admission: only configured stations, HTTP Basic (OCPP security profile 1).

Failures are logged with the peer address and slowed down per peer address: each
failure in a row doubles the delay before the refusal is sent (capped), so guessing
passwords costs time while a legitimate station that fixes its password gets in at once.
"""
from __future__ import annotations

import base64
import hmac
import logging
from typing import Any, Callable

log = logging.getLogger(__name__)

OK = "ok"
UNKNOWN_STATION = "unknown_station"
BAD_PASSWORD = "bad_password"
NO_CREDENTIALS = "no_credentials"
BAD_PATH = "bad_path"


def station_from_path(path: str) -> str | None:
    """``/CP001`` -> ``CP001``; the identity is the last path segment (OCPP-J 3.1.1)."""
    p = path.split("?", 1)[0].rstrip("/")
    ident = p.rsplit("/", 1)[-1] if p else ""
    if not ident or len(ident) > 48:
        return None
    from urllib.parse import unquote
    return unquote(ident)


def check_basic(header: str | None, station_id: str, password: str | None) -> str:
    """Check an Authorization header against the configured password (None = no auth)."""
    if password is None:
        return OK
    if not header or not header.startswith("Basic "):
        return NO_CREDENTIALS
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):   # binascii.Error is a ValueError; so is non-ASCII
        return BAD_PASSWORD
    user, sep, pw = raw.partition(":")
    if not sep:
        return BAD_PASSWORD
    # compare_digest on both parts: timing must not reveal which one was wrong.
    ok_user = hmac.compare_digest(user.encode(), station_id.encode())
    ok_pw = hmac.compare_digest(pw.encode(), password.encode())
    return OK if (ok_user and ok_pw) else BAD_PASSWORD


class FailureThrottle:
    """Delay before refusing a peer that keeps failing: base * 2^(n-1), capped."""

    def __init__(self, base_s: float = 0.25, max_s: float = 8.0, forget_s: float = 600.0,
                 clock: Callable[[], float] | None = None, max_peers: int = 4096) -> None:
        import time
        self._base = base_s
        self._max = max_s
        self._forget = forget_s
        self._clock = clock or time.monotonic
        self._max_peers = max_peers
        self._fails: dict[Any, tuple[int, float]] = {}

    def failures(self, peer: Any) -> int:
        n, at = self._fails.get(peer, (0, 0.0))
        if n and self._clock() - at > self._forget:
            return 0
        return n

    def record_failure(self, peer: Any) -> float:
        """Count a failure; returns the delay to apply before answering."""
        n = self.failures(peer) + 1
        if len(self._fails) >= self._max_peers and peer not in self._fails:
            # Bounded memory under a spray of source addresses: drop the oldest entry.
            oldest = min(self._fails, key=lambda k: self._fails[k][1])
            del self._fails[oldest]
        self._fails[peer] = (n, self._clock())
        return self.delay_for(n)

    def delay_for(self, n: int) -> float:
        if n <= 1:
            return 0.0
        return min(self._max, self._base * (2 ** (n - 2)))

    def record_success(self, peer: Any) -> None:
        self._fails.pop(peer, None)
