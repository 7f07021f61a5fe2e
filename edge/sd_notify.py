"""systemd's notify protocol (sd_notify(3)): readiness, status text, watchdog pings.

The protocol is one datagram of ``KEY=VALUE`` lines to the AF_UNIX socket named in
``$NOTIFY_SOCKET`` (a leading ``@`` means Linux's abstract namespace). That is a
few lines, so they are written here: the PyPI candidates are either unmaintained
since 2017 (``sdnotify``) or C extensions needing libsystemd headers and a compiler
(``systemd-python``, ``cysystemd``), which a gateway may not have.

Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing. A send that fails
is logged once and never stops the service: the watchdog will notice instead.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, env: Mapping[str, str] = os.environ, clock: Callable[[], float] = time.monotonic) -> None:
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_s = _watchdog_s(env)
        self._clock = clock
        self._last_ping = float("-inf")
        self._failed = False
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: object) -> bool:
        """One datagram, e.g. ``send(READY=1, STATUS="running")``; False if not sent."""
        if self.address is None:
            return False
        message = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message, self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd at %r: %s", self.address, exc)
                self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str) -> bool:
        return self.send(READY=1, STATUS=status, MAINPID=os.getpid())

    def status(self, text: str) -> bool:
        return self.send(STATUS=text)

    def stopping(self) -> bool:
        return self.send(STOPPING=1, STATUS="stopping")

    def ping(self) -> bool:
        """WATCHDOG=1, at most twice per watchdog period (systemd's advice); call it
        from the control loop, so a stuck loop stops the pings and gets restarted."""
        if self.watchdog_s is None:
            return False
        now = self._clock()
        if now - self._last_ping < self.watchdog_s / 2:
            return False
        if self.send(WATCHDOG=1):
            self._last_ping = now
            return True
        return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _address(value: str) -> str | None:
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None                # vsock or unknown forms: not for a gateway


def _watchdog_s(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None            # meant for another process (a parent that exec'd us keeps it)
    return int(usec) / 1e6
