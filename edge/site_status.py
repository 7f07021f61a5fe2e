"""What the edge sees, as one model for every window into it.

The local API (edge.web), its live page, the Prometheus metrics and the terminal
view of `make run` all show the site through these two functions, so they never
disagree: ``site(service)`` (per-phase grid current, building load, EV current,
limit and headroom, the external cap, allocation mode, cloud link, outbox) and
``connectors(service)`` (session, masked token, group, priority, allocated, drawn,
phases and the allocation's reason, per connector). Plain dicts of ints and texts,
currents in deciamps, instants in UTC seconds.
"""
from __future__ import annotations

from typing import Any

PHASE_NAMES = ("L1", "L2", "L3")


def mask_token(uid: Any) -> str | None:
    """A card id shown so a person can recognise it, not copy it: 04******D4."""
    if uid is None:
        return None
    uid = str(uid)
    if len(uid) <= 4:
        return "*" * len(uid)
    return uid[:2] + "*" * (len(uid) - 4) + uid[-2:]


def site(service: Any) -> dict[str, Any]:
    now = service.clock()
    s = service.site
    result = service.last
    status = result.status if result is not None else None
    meter = service.poller.latest(service.cfg.grid_meter) if service.cfg.grid_meter else None
    grid = list(meter.current_da) if meter is not None else [None, None, None]
    ev = [0, 0, 0]
    for sess in service.gateway.live_sessions():
        d = sess.get("drawn_da")
        if d:
            for p in range(3):
                ev[p] += d[p] or 0
    ext = service.cloud.handler.site_limit(now) if service.cloud is not None else None
    cap_da = ext["max_da"] if ext is not None else None
    phases = []
    for p in range(3):
        limit = s.grid_max_da if cap_da is None else min(s.grid_max_da, cap_da)
        g = grid[p]
        phases.append({
            "phase": PHASE_NAMES[p],
            "grid_da": g,                                   # measured at the grid meter
            "ev_da": ev[p],                                 # what the cars report drawing
            "building_da": max(0, g - ev[p]) if g is not None else None,
            "limit_da": limit,                              # fuse, or the external cap when lower
            "margin_da": s.margin_da,
            "headroom_da": limit - s.margin_da - g if g is not None else None,
            "overshoot": g is not None and g > limit,
            "overloaded": bool(status and p in status.get("overloaded", ())),
        })
    cloud: dict[str, Any] = {"configured": service.cloud is not None, "online": False}
    if service.cloud is not None:
        st = service.cloud.state()
        cloud.update(online=bool(st["online"]), connects=st["connects"], last_error=_cut(st.get("last_error")),
                     lists_version=st.get("lists_version"), records_sent=st.get("records_sent"))
    return {
        "site_id": s.site_id,
        "now_s": int(now),
        "cycles": service.cycles,
        "allocation": {
            "mode": status["mode"] if status else None,
            "reason": status["reason"] if status else None,
            "since_s": status["since_s"] if status else None,
            "paused": len(status["paused"]) if status else 0,
            "notes": list(status.get("notes") or []) if status else [],
        },
        "meter": None if meter is None else {
            "id": service.cfg.grid_meter, "at_s": meter.at_s, "age_s": round(now - meter.at_s, 1),
            "power_w": meter.power_w},
        "grid": {"max_da": s.grid_max_da, "margin_da": s.margin_da, "max_power_w": s.grid_max_power_w},
        "external_limit": None if ext is None else {
            "max_da": ext["max_da"], "expires_s": ext.get("expires_s"), "limit_id": _cut(ext.get("limit_id")),
            "source": _cut(ext.get("source"))},
        "phases": phases,
        "cloud": cloud,
        "outbox": {"pending": service.outbox.count()},
        "storage": storage(service),
        "stations": {"total": len(service.gateway.stations),
                     "connected": sum(1 for st in service.gateway.stations.values() if st.connected)},
    }


def storage(service: Any) -> dict[str, Any]:
    """The store's disk against the free-space floor (edge/store/space.py): ``low`` while
    new sessions are refused; ``held_stops``: stops the store refused, kept in memory."""
    space = getattr(service, "space", None)
    st = space.state() if space is not None else {}
    return {"low": bool(st.get("low")), "free_bytes": st.get("free_bytes"),
            "floor_bytes": st.get("floor_bytes"), "since_s": st.get("since_s"),
            "held_stops": service.sessions.held_stops()}


def connectors(service: Any) -> list[dict[str, Any]]:
    result = service.last
    reasons = result.reasons() if result is not None else {}
    live = {sess["key"]: sess for sess in service.gateway.live_sessions()}
    records = {(r["station"], r["connector"]): r for r in service.sessions.open_sessions()}
    stations = service.gateway.station_status()
    book = service.lists.book
    out = []
    for c in service.site.connectors():
        key = (c.station_id, c.id)
        sess = live.get(key)
        rec = records.get(key)
        st = stations.get(c.station_id, {})
        limit = result.limits.get(key) if result is not None else None
        target = result.targets.get(key) if result is not None else None
        group = book.group(rec["group_id"]) if rec is not None and rec.get("group_id") else None
        drawn = sess.get("drawn_da") if sess else None
        out.append({
            "station": c.station_id,
            "connector": c.id,
            "wiring": "".join(PHASE_NAMES[p] for p in c.wiring),
            "min_da": c.min_da,
            "max_da": c.max_da,
            "connected": bool(st.get("connected")),
            "status": st.get("connectors", {}).get(c.id),
            "session_id": rec["session_id"] if rec else None,
            "token": mask_token(rec.get("token")) if rec else None,
            "started_s": rec["started_s"] if rec else None,
            "group_id": rec.get("group_id") if rec else None,
            "group_name": group.name if group is not None else None,
            "prioritised": bool(sess and sess.get("prioritised")),
            "allocated_da": limit[0] if limit else 0,
            "target_da": target[0] if target else 0,
            "phases": limit[1] if limit else c.phases,
            # per connector phase, in wiring order (what the car draws on each wire)
            "drawn_da": [drawn[p] for p in c.wiring] if drawn else None,
            "reason": reasons.get(key),
        })
    return out


def _cut(v: Any, n: int = 120) -> Any:
    if isinstance(v, str) and len(v) > n:
        return v[:n] + "..."
    return v
