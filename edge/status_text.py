"""The status model (edge.site_status) as text for an 80-column terminal: the grid
per phase and the connectors with their reasons. `make run` shows it live and
`edge status` prints it from the local API, so both read the same way."""
from __future__ import annotations

import time
from typing import Any

WIDTH = 80
# The reason column in a few characters; LEGEND says them in full.
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


def amps(da: int | None) -> str:
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
    left = " (%s left)" % amps(reason["left_da"]) if reason.get("left_da") is not None else ""
    turn = "in %ds" % max(0, reason["turn_s"] - now_s) if reason.get("turn_s") else "?"
    if code in ("failsafe", "external_limit") and reason.get("paused"):
        text = "PAUSED: " + text
    return text.format(where=_where(reason), left=left, turn=turn)


def wrap(text: str, width: int = WIDTH) -> list[str]:
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


def headline(st: dict[str, Any]) -> str:
    alloc = st["allocation"]
    mode = (alloc["mode"] or "starting").upper() + (" (%s)" % alloc["reason"] if alloc["reason"] else "")
    cloud = st["cloud"]
    link = ("online" if cloud["online"] else "OFFLINE") if cloud["configured"] else "none"
    lists = " lists v%s" % cloud["lists_version"] if cloud.get("lists_version") is not None else ""
    # first, so the width never cuts it: new sessions are refused until space is freed
    disk = "DISK LOW: no new sessions  " if (st.get("storage") or {}).get("low") else ""
    return ("%ssite %s  %s  cloud %s%s  outbox %d" % (disk, st["site_id"], mode, link, lists,
                                                     st["outbox"]["pending"]))[:WIDTH]


def phase_lines(st: dict[str, Any]) -> list[str]:
    lines = ["phase  grid A  building  cars A  limit A  headroom"]
    for p in st["phases"]:
        flag = "  OVER LIMIT" if p["overshoot"] else ("  overloaded" if p["overloaded"] else "")
        lines.append("%-5s %7s %9s %7s %8s %9s%s" % (p["phase"], amps(p["grid_da"]), amps(p["building_da"]),
                                                   amps(p["ev_da"]), amps(p["limit_da"]), amps(p["headroom_da"]),
                                                   flag))
    ext = st.get("external_limit")
    if ext is not None:
        until = ext.get("expires_s")
        lines.append(("external cap %s A on each phase" % amps(ext["max_da"])) + (
            "" if until is None else " until %s (%ds left)" % (time.strftime("%H:%M:%S", time.localtime(until)),
                                                              max(0, until - st["now_s"]))))
    return lines


def connector_lines(conns: list[dict[str, Any]], now_s: float) -> list[str]:
    lines = ["%-6s %-6s %-7s %-9s %-11s %5s %2s %s" % ("stat.", "wiring", "card", "group", "given A",
                                                       "drawn", "ph", "why")]
    for c in conns:
        given = amps(c["allocated_da"])
        if c["target_da"] != c["allocated_da"]:
            given += ">" + amps(c["target_da"])
        group = (c["group_id"] or "-").replace("g-", "")[:8] + ("*" if c["prioritised"] else "")
        drawn = amps(max(c["drawn_da"])) if c["drawn_da"] else "-"
        row = "%-6s %-6s %-7s %-9s %-11s %5s %2s " % (
            c["station"][:6], c["wiring"].replace("L", "")[:6], (c["token"] or "-")[:7], group, given[:11],
            drawn, c["phases"])
        lines.append((row + short_reason(c["reason"], now_s))[:WIDTH])
    return lines
