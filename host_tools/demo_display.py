"""The live screen of `make run`, from the same status model as the local API
(edge.site_status): the grid per phase, each connector with the reason the
allocation gives it, and recent events, in 80 columns."""
from __future__ import annotations

import time
from typing import Any

from edge import site_status

WIDTH = 80
# The reason column in a few characters; the legend under the table says them in full.
_SHORT = {
    "at_max": "max", "at_demand": "car uses less", "limited": "full: {where}",
    "paused_no_fit": "PAUSED: min > {where}{left}", "paused_rotation": "PAUSED: turn {turn}",
    "failsafe": "fail-safe {where}", "external_limit": "ext. cap {where}",
    "uncontrollable": "ignores limits", "idle": "",
}
LEGEND = ("why: max = at its maximum; car uses less = at its draw + headroom; full: X = held "
          "by circuit X (grid/group/station) on that phase; PAUSED: min > X = its minimum does "
          "not fit on X (what is left); PAUSED: turn = waits its turn (rotation); fail-safe / "
          "ext. cap = the meter's fail-safe budget or the grid operator's cap holds it. "
          "* prioritised group; given -> target while a raise ramps.")


def _a(da: int | None) -> str:
    return "-" if da is None else "%.1f" % (da / 10)


def _where(reason: dict) -> str:
    circuit = (reason.get("circuit") or "?").replace("station:", "").replace("group:", "")
    phase = reason.get("phase") or ""
    return "%s %s" % (circuit, phase) if phase not in ("", "all") else circuit


def short_reason(reason: dict | None, now_s: float) -> str:
    if not reason:
        return ""
    code = reason["code"]
    text = _SHORT.get(code, code)
    left = " (%s left)" % _a(reason["left_da"]) if reason.get("left_da") is not None else ""
    turn = "in %ds" % max(0, reason["turn_s"] - now_s) if reason.get("turn_s") else "?"
    if code in ("failsafe", "external_limit") and reason.get("paused"):
        text = "PAUSED: " + text
    return text.format(where=_where(reason), left=left, turn=turn)


def _wrap(text: str, width: int = WIDTH) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = word if not line else line + " " + word
    if line:
        lines.append(line)
    return lines


def render(demo: Any) -> str:
    svc = demo.service
    st = site_status.site(svc)
    conns = site_status.connectors(svc)
    now = st["now_s"]
    alloc = st["allocation"]
    mode = (alloc["mode"] or "starting").upper() + (" (%s)" % alloc["reason"] if alloc["reason"] else "")
    cloud = st["cloud"]
    lines = ["site %s  t=%ds  %s  cloud %s  lists v%s  outbox %d"
             % (st["site_id"], time.time() - demo.t0, mode, "online" if cloud["online"] else "OFFLINE",
                cloud.get("lists_version", svc.lists.version), st["outbox"]["pending"])]
    lines.append("phase  grid A  building  cars A  limit A  headroom")
    for p in st["phases"]:
        flag = "  OVER LIMIT" if p["overshoot"] else ("  overloaded" if p["overloaded"] else "")
        lines.append("%-5s %7s %9s %7s %8s %9s%s" % (p["phase"], _a(p["grid_da"]), _a(p["building_da"]),
                                                   _a(p["ev_da"]), _a(p["limit_da"]), _a(p["headroom_da"]), flag))
    ext = st["external_limit"]
    if ext is not None:
        lines.append("external cap %s A on each phase until %s (%ds left)" % (
            _a(ext["max_da"]), time.strftime("%H:%M:%S", time.localtime(ext["expires_s"])),
            max(0, ext["expires_s"] - now)))
    lines.append("")
    lines.append("%-6s %-6s %-7s %-9s %-11s %5s %2s %s" % ("stat.", "wiring", "card", "group", "given A",
                                                           "drawn", "ph", "why"))
    for c in conns:
        given = _a(c["allocated_da"])
        if c["target_da"] != c["allocated_da"]:
            given += ">" + _a(c["target_da"])
        group = (c["group_id"] or "-").replace("g-", "")[:8] + ("*" if c["prioritised"] else "")
        drawn = _a(max(c["drawn_da"])) if c["drawn_da"] else "-"
        row = "%-6s %-6s %-7s %-9s %-11s %5s %2s " % (
            c["station"][:6], c["wiring"].replace("L", "")[:6], (c["token"] or "-")[:7], group, given[:11],
            drawn, c["phases"])
        lines.append((row + short_reason(c["reason"], now))[:WIDTH])
    lines.append("")
    lines.extend(_wrap(LEGEND))
    lines.append("")
    lines.append("events:")
    lines.extend(("  " + e)[:WIDTH] for e in demo.events[-6:])
    demo.observe(st)
    return "\n".join(lines)
