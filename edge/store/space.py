"""Room on the store's disk for what matters most: the free-space floor.

A full disk makes every write fail, and the writes that matter most are the ends of
sessions already charging (their stop time and register are what gets billed), the
meter values and the records the cloud has not acknowledged yet. So below a floor
(``store.min_free_mb``) the edge refuses *new* sessions and keeps the room left for
those; when space comes back, new sessions are taken again.

``SpaceFloor.low()`` is asked on every start; the free space is read at most every
``every_s`` seconds (one ``statvfs``), so a burst of starts costs one read. A change
is logged once (WARNING when it falls below, INFO when it is back) and handed to the
listeners (the service: event log, local API, cloud alarm).
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

MB = 1024 * 1024
DEFAULT_MIN_FREE_MB = 64
# The WAL alone may hold 4 MB before it is cut back (edge/store/db.py): a smaller floor
# keeps no room at all (seen on a real full file system, tests/ocpp/test_ocpp_tiny_disk.py).
MIN_MIN_FREE_MB = 8
MAX_MIN_FREE_MB = 1024 * 1024          # 1 TiB: anything above is a typo


def disk_free(path: str) -> int:
    """Bytes an unprivileged writer may still use on the disk holding ``path``."""
    return shutil.disk_usage(path).free


class SpaceFloor:
    """``low()``: True while the store's disk has less than ``floor_bytes`` free.

    ``probe(dir)`` gives free bytes (``disk_free`` by default; tests inject their own);
    ``clock`` gives UTC seconds (for ``since_s``); ``monotonic`` paces the reads.
    ``floor_bytes`` 0 switches the floor off (``low()`` is always False).
    """

    def __init__(self, store_path: str, floor_bytes: int, *,
                 probe: Optional[Callable[[str], int]] = None,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 every_s: float = 5.0) -> None:
        self.dir = os.path.dirname(os.path.abspath(str(store_path)))
        self.floor_bytes = int(floor_bytes)
        self._probe = probe or disk_free
        self._clock = clock
        self._monotonic = monotonic
        self.every_s = every_s
        self._read_at: Optional[float] = None
        self._low = False
        self.free_bytes: Optional[int] = None
        self.since_s: Optional[int] = None       # when the current incident began
        self.incidents = 0
        self._probe_failed = False
        self._listeners: list[Callable[[dict], Any]] = []

    def subscribe(self, listener: Callable[[dict], Any]) -> None:
        """``listener(state())`` after every read of the free space (changed or not), so
        a listener whose last action failed (a full disk) can try again."""
        self._listeners.append(listener)

    def low(self) -> bool:
        if self.floor_bytes <= 0:
            return False
        now = self._monotonic()
        if self._read_at is None or now - self._read_at >= self.every_s:
            self._read_at = now
            self._read()
        return self._low

    def check(self) -> bool:
        """Read now (the periodic writer's tick and tests), whatever the pace."""
        self._read_at = None
        return self.low()

    def state(self) -> dict[str, Any]:
        return {"low": self._low, "free_bytes": self.free_bytes,
                "floor_bytes": self.floor_bytes, "since_s": self.since_s,
                "incidents": self.incidents}

    def _read(self) -> None:
        try:
            free = int(self._probe(self.dir))
        except (OSError, ValueError, TypeError) as exc:
            # cannot tell: keep the last verdict (a refused start is worse than a
            # possibly full disk that the store's own errors will show)
            if not self._probe_failed:
                log.warning("cannot read the free space of %s (%s); the free-space floor"
                            " keeps its last state", self.dir, str(exc)[:120])
            self._probe_failed = True
            return
        self._probe_failed = False
        self.free_bytes = free
        low = free < self.floor_bytes
        if low and not self._low:
            self.incidents += 1
            self.since_s = int(self._clock())
            log.warning("the store's disk (%s) has %d MB free, below the floor of %d MB"
                        " (store.min_free_mb): new charging sessions are refused until"
                        " space is freed; running sessions, their stops, meter values and"
                        " the outbox go on", self.dir, free // MB, self.floor_bytes // MB)
        elif not low and self._low:
            log.info("the store's disk has %d MB free again (floor %d MB): new charging"
                     " sessions are accepted again", free // MB, self.floor_bytes // MB)
            self.since_s = None
        self._low = low
        state = self.state()
        for listener in self._listeners:
            try:
                listener(state)
            except Exception:
                log.exception("free-space listener failed")
