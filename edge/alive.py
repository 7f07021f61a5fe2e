"""One INFO line a minute that says the edge is alive and what it sees.

Whoever reads the journal of a gateway should tell at a glance that the control
loop turns and how the site is: stations connected, sessions charging, the grid
meter, the allocation's mode, the cloud link and how many records wait for it.
Registered with ``EdgeService.on_cycle``, so the line also stops when the loop does.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

log = logging.getLogger("edge.alive")


class AliveLog:
    def __init__(self, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._next = clock()              # the first line right after start

    def __call__(self, service: Any) -> None:
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self.every_s
        log.info("alive: %s", line(service))


def line(service: Any) -> str:
    """e.g. "2/3 stations connected, 1 charging, meter grid ok 4200 W, allocation normal,
    cloud online, outbox 0"."""
    stations = service.gateway.station_status()
    connected = sum(1 for st in stations.values() if st.get("connected"))
    charging = len(service.gateway.live_sessions())
    parts = [f"{connected}/{len(service.site.stations())} stations connected", f"{charging} charging"]
    grid = service.cfg.grid_meter
    if grid is None:
        parts.append("no grid meter")
    else:
        st = service.poller.status(grid)
        reading = service.poller.latest(grid)
        if st["stale"]:
            why = (st["last_error"] or "no reading yet")[:120]     # may quote a device's reply
            parts.append(f"meter {grid} STALE ({why!r})")
        else:
            parts.append(f"meter {grid} ok {reading.power_w} W")
    mode = service.last.status["mode"] if service.last is not None else "starting"
    parts.append(f"allocation {mode}")
    if service.cloud is None:
        parts.append("cloud off")
    else:
        parts.append("cloud online" if service.cloud.online else "cloud OFFLINE")
    parts.append(f"outbox {service.outbox.count()}")
    return ", ".join(parts)
