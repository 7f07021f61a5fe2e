"""The live table of `make run`: what is allocated to whom, and why."""
from __future__ import annotations

import time
from typing import Any


def _a(da: int | None) -> str:
    return "-" if da is None else "%.1f" % (da / 10)


def render(demo: Any) -> str:
    svc = demo.service
    last = svc.last
    reading = svc.poller.latest(svc.cfg.grid_meter)
    lines = []
    elapsed = time.time() - demo.t0
    grid = "no reading" if reading is None else " ".join("L%d %5.1f A" % (p + 1, reading.current_da[p] / 10)
                                                         for p in range(3))
    lines.append("EV charging site '%s'  t=%5.0fs   grid meter: %s   limit %s A/phase (margin %s)"
                 % (svc.site.site_id, elapsed, grid, _a(svc.site.grid_max_da), _a(svc.site.margin_da)))
    if last is not None:
        st = last.status
        mode = st["mode"].upper() + ("" if not st["reason"] else " (%s)" % st["reason"])
        ext = "" if st.get("site_limit_da") is None else "   external cap %s A" % _a(st["site_limit_da"])
        lines.append("allocation: %s%s   cycles %d" % (mode, ext, svc.cycles))
    cloud = svc.cloud
    lines.append("cloud: %s   lists v%s   outbox pending %d   cloud has %d records"
                 % ("online" if cloud is not None and cloud.online else "OFFLINE", svc.lists.version,
                    svc.outbox.count(), demo.peer.record_count(svc.site.site_id)))
    lines.append("")
    head = "%-6s %-3s %-7s %-9s %-8s %-4s %9s %8s %3s %9s  %s" % (
        "station", "v", "wiring", "token", "group", "prio", "allocated", "drawn", "ph", "energy", "state")
    lines.append(head)
    lines.append("-" * len(head))
    live = {s["key"]: s for s in svc.gateway.live_sessions()}
    rows = {(r["station"], r["connector"]): r for r in demo.fleet.snapshot()}
    paused = set(map(tuple, last.status["paused"])) if last is not None else set()
    for conn in svc.site.connectors():
        key = (conn.station_id, conn.id)
        row = rows.get(key, {})
        sess = live.get(key)
        version = next((v for _, sid, v, _ in _stations(demo) if sid == conn.station_id), "?")
        wiring = "".join("L%d" % (p + 1) for p in conn.wiring)
        limit = last.limits.get(key) if last is not None else None
        alloc = "-" if limit is None else "%s A" % _a(limit[0])
        if limit is not None and limit[1] == 1 and conn.phases == 3:
            alloc += " 1ph"
        state = row.get("state", "?")
        if key in paused:
            state += " (paused: no room)"
        lines.append("%-6s %-3s %-7s %-9s %-8s %-4s %9s %6.1f A %3s %7.2fkWh  %s" % (
            conn.station_id, "2.0" if version.startswith("2") else "1.6", wiring,
            (row.get("id_tag") or "-")[:9], ((sess or {}).get("group_id") or "-")[:8],
            "yes" if sess and sess.get("prioritised") else "", alloc, row.get("drawn_a") or 0.0,
            row.get("phases") or "-", (row.get("session_wh") or 0) / 1000, state))
    lines.append("")
    lines.append("events:")
    lines.extend("  " + e for e in demo.events[-8:])
    return "\n".join(lines)


def _stations(demo: Any):
    from host_tools.demo_site import STATIONS
    return STATIONS
