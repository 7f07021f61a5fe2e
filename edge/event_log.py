"""The last few hundred things that happened at the site, for people (the local API).

Gateway events, allocation mode changes and cloud link changes go in as short
neutral dicts; the oldest fall out. Each gets a sequence number, so a live page can
ask for what is newer than what it has. Peer text is cut before it is kept.
"""
from __future__ import annotations

from collections import deque
from typing import Any

_TEXT_MAX = 120
# Per gateway event, the body fields worth showing (the rest is internal detail).
_FIELDS = {
    "station_connected": ("station", "connected", "version"),
    "status": ("station", "connector", "status", "error"),
    "session_started": ("station", "connector", "session_id", "group_id"),
    "session_stopped": ("station", "connector", "session_id", "energy_wh", "stop_reason"),
}


def _short(v: Any) -> Any:
    if isinstance(v, str) and len(v) > _TEXT_MAX:
        return v[:_TEXT_MAX] + "..."
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return _short(repr(v))


class EventLog:
    def __init__(self, kept: int = 200) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=kept)
        self.seq = 0

    def add(self, at_s: float, kind: str, body: dict[str, Any] | None = None) -> None:
        if kind == "meter_sample":
            return      # every few seconds per car: not an event for people
        fields = _FIELDS.get(kind)
        body = body or {}
        data = {k: _short(body.get(k)) for k in (fields if fields is not None else body) if k in body}
        self.seq += 1
        self._items.append({"seq": self.seq, "at_s": int(at_s), "kind": kind, **data})

    def recent(self, limit: int = 50, after: int = 0) -> list[dict[str, Any]]:
        """Newest first, at most ``limit``, only those with seq > ``after``."""
        out = []
        for item in reversed(self._items):
            if item["seq"] <= after or len(out) >= limit:
                break
            out.append(item)
        return out

    def resize(self, kept: int) -> None:
        self._items = deque(self._items, maxlen=kept)
