"""The local API's JSON and CSV endpoints (docs/local-api.md). Read-only except
stopping a session, which needs the admin login (edge.web.auth)."""
from __future__ import annotations

import csv
import io
import time
from typing import Any

from aiohttp import web

from edge import site_status
from edge.site_status import mask_token
from edge.web.auth import ROLE

PAGE_MAX = 500
_CSV_COLUMNS = ("session_id", "station", "connector", "token", "group_id", "started_utc", "stopped_utc",
                "energy_wh", "cost_total", "currency", "stop_reason", "state", "refused")


def _int_arg(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        v = lo - 1
    if not lo <= v <= hi:
        raise web.HTTPBadRequest(text="%s: must be a whole number from %d to %d (got %r)\n" % (name, lo, hi, raw[:20]))
    return v


def _state_arg(request: web.Request) -> str | None:
    state = request.query.get("state")
    if state not in (None, "started", "completed"):
        raise web.HTTPBadRequest(text="state: must be started or completed (got %r)\n" % state[:20])
    return state


def session_view(rec: dict[str, Any]) -> dict[str, Any]:
    """A stored session as the API shows it: the token masked."""
    out = dict(rec)
    out["token"] = mask_token(rec.get("token"))
    return out


class Api:
    def __init__(self, service: Any) -> None:
        self.service = service

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/status", self.status),
            web.get("/api/v1/connectors", self.connectors),
            web.get("/api/v1/sessions", self.sessions),
            web.get("/api/v1/sessions.csv", self.sessions_csv),
            web.post("/api/v1/sessions/{session_id}/stop", self.stop_session),
            web.get("/api/v1/groups", self.groups),
            web.get("/api/v1/groups/history", self.history),
            web.get("/api/v1/events", self.events),
        ]

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(site_status.site(self.service))

    async def connectors(self, request: web.Request) -> web.Response:
        return web.json_response({"connectors": site_status.connectors(self.service)})

    async def sessions(self, request: web.Request) -> web.Response:
        limit = _int_arg(request, "limit", 50, 1, PAGE_MAX)
        offset = _int_arg(request, "offset", 0, 0, 1 << 31)
        state = _state_arg(request)
        store = self.service.sessions
        return web.json_response({"total": store.count(state), "limit": limit, "offset": offset,
                                  "sessions": [session_view(r) for r in store.page(limit, offset, state)]})

    async def sessions_csv(self, request: web.Request) -> web.StreamResponse:
        state = _state_arg(request)
        resp = web.StreamResponse(headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="sessions-%s.csv"' % self.service.site.site_id})
        await resp.prepare(request)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(_CSV_COLUMNS)
        offset = 0
        store = self.service.sessions
        while True:
            # In pages, written as they come: a year of sessions never sits in memory
            # nor holds the event loop for long.
            rows = store.page(PAGE_MAX, offset, state)
            for r in rows:
                w.writerow([_cell(v) for v in _csv_row(r)])
            await resp.write(buf.getvalue().encode("utf-8"))
            buf.seek(0)
            buf.truncate()
            if len(rows) < PAGE_MAX:
                break
            offset += PAGE_MAX
        await resp.write_eof()
        return resp

    async def stop_session(self, request: web.Request) -> web.Response:
        sid = request.match_info["session_id"]
        rec = self.service.sessions.get(sid)
        if rec is None or rec["state"] != "started":
            raise web.HTTPNotFound(text="no running session %r\n" % sid[:64])
        ok = await self.service.gateway.remote_stop(sid)
        self.service.events.add(self.service.clock(), "remote_stop", {
            "session_id": sid, "station": rec["station"], "connector": rec["connector"], "by": request[ROLE],
            "accepted": bool(ok)})
        return web.json_response({"session_id": sid, "accepted": bool(ok)}, status=200 if ok else 409)

    async def groups(self, request: web.Request) -> web.Response:
        book = self.service.lists.book
        snap = book.to_snapshot()
        counts = {g["id"]: self.service.sessions.count_by_group(g["id"]) for g in snap["groups"]}
        groups = [dict(g, sessions=counts[g["id"]]) for g in snap["groups"]]
        return web.json_response({"version": snap["version"], "groups": groups})

    async def history(self, request: web.Request) -> web.Response:
        limit = _int_arg(request, "limit", 100, 1, PAGE_MAX)
        gid = request.query.get("group")
        entries = [h for h in reversed(self.service.lists.book.history) if gid is None or h.get("group_id") == gid]
        return web.json_response({"history": entries[:limit], "total": len(entries)})

    async def events(self, request: web.Request) -> web.Response:
        limit = _int_arg(request, "limit", 50, 1, PAGE_MAX)
        after = _int_arg(request, "after", 0, 0, 1 << 62)
        log = self.service.events
        return web.json_response({"seq": log.seq, "events": log.recent(limit, after)})


def _csv_row(r: dict[str, Any]) -> list[Any]:
    cost = r.get("cost") or {}
    tariff = r.get("tariff") or {}
    total = cost.get("total_m")
    return [r["session_id"], r["station"], r["connector"], mask_token(r.get("token")), r.get("group_id"),
            _iso(r.get("started_s")), _iso(r.get("stopped_s")), r.get("energy_wh"),
            "%.3f" % (total / 1000) if isinstance(total, int) else "", tariff.get("currency", ""),
            r.get("stop_reason"), r.get("state"), "yes" if r.get("refused") else ""]


def _iso(t: Any) -> str:
    if t is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


def _cell(v: Any) -> Any:
    # A cell a spreadsheet would run as a formula (ids come from wallboxes and the cloud).
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return "" if v is None else v
