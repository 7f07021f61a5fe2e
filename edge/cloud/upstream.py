"""Station status and telemetry go up as changes, not as copies (docs/cloud-protocol.md).

A site gateway often sits on a metered cellular link. Re-sending the whole site
status on every StatusNotification, or the whole allocation every few seconds, costs
megabytes a day for information the cloud already has. So:

- Station status: the edge keeps the table of station entries. A change marks its
  station; marked stations go up together in one ``status`` message with
  ``full: false``, at most one per ``status_every_s`` (a burst of 500 connecting
  stations becomes a handful of messages). The whole table (``full: true``, retained)
  goes up only after every connect and when the cloud asks (``status_request``).
- Telemetry: the service offers a sample every ``control.telemetry_every_s``. It goes
  up only when something moved beyond a deadband since what was last *sent* (so a
  slow drift is still reported once it adds up): a session, the phases, the site
  state, a pause or resume, or a connector's limit or current by at least
  ``telemetry_step_da`` (the grid's by ``telemetry_grid_step_da``). Only the
  connectors that moved are listed. With no change, a heartbeat (site fields only)
  every ``telemetry_heartbeat_s``.

Each message carries ``stream`` (random per process) and ``seq`` (one counter per
message family, +1 per message sent): a cloud that sees anything but its last
``seq`` + 1 in the same stream missed something and asks for a full status.
A requested full is sent at most once per ``full_min_interval_s``, so a confused or
hostile cloud cannot make the edge send its whole table in a loop.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

Key = Tuple[str, int]

FULL_MIN_INTERVAL_S = 30.0


class StatusStream:
    """The station table and what of it the cloud has not yet been sent."""

    def __init__(self, stream: str, every_s: float, full_min_interval_s: float = FULL_MIN_INTERVAL_S) -> None:
        self.stream = stream
        self.every_s = every_s
        self.full_min_interval_s = full_min_interval_s
        self.seq = 0
        self._now: Dict[str, dict] = {}         # station id -> entry as the edge knows it
        self._sent: Dict[str, dict] = {}        # station id -> entry as last sent
        self._changed: set = set()
        self._last_sent_s: Optional[float] = None
        self._last_full_s: Optional[float] = None
        self._full_wanted = False               # a full is owed (cloud asked, or one was lost)
        self._request_id: Optional[str] = None  # the cloud's status_request it answers

    def replace_all(self, entries: List[dict]) -> None:
        """The whole table (start-up): stations not listed are forgotten."""
        self._now = {e["id"]: e for e in entries}
        self._changed = set(self._now) | set(self._sent)

    def update(self, entry: dict) -> bool:
        """One station's entry; True when it differs from what the edge knew."""
        sid = entry["id"]
        if self._now.get(sid) == entry:
            return False
        self._now[sid] = entry
        self._changed.add(sid)
        return True

    def request_full(self, request_id: Optional[str] = None) -> None:
        self._full_wanted = True
        if request_id is not None:
            self._request_id = request_id

    def due_at(self) -> Optional[float]:
        """When the next message may go, or None when there is nothing to send."""
        if self._full_wanted:
            at = self._after(self._last_full_s, self.full_min_interval_s)
            return max(at, self._after(self._last_sent_s, self.every_s))
        if not self._changed:
            return None
        return self._after(self._last_sent_s, self.every_s)

    @staticmethod
    def _after(last: Optional[float], interval: float) -> float:
        return float("-inf") if last is None else last + interval

    def full(self, now: float, request_id: Optional[str] = None) -> dict:
        """Body of a full status (after a connect, or answering a request)."""
        self._sent = dict(self._now)
        self._changed.clear()
        self._full_wanted = False
        self._request_id = None
        self._last_full_s = now
        return self._body(now, True, [self._now[s] for s in sorted(self._now)], request_id)

    def take(self, now: float) -> Optional[dict]:
        """Body of the message due at ``now`` (full when requested), else None."""
        due = self.due_at()
        if due is None or now < due:
            return None
        if self._full_wanted:
            return self.full(now, self._request_id)
        changed = [self._now[s] for s in sorted(self._changed)
                   if s in self._now and self._sent.get(s) != self._now[s]]
        self._changed.clear()
        if not changed:             # changed and changed back within one window
            return None
        for entry in changed:
            self._sent[entry["id"]] = entry
        return self._body(now, False, changed, None)

    def _body(self, now: float, full: bool, stations: List[dict], request_id: Optional[str]) -> dict:
        self.seq += 1
        self._last_sent_s = now
        body = {"stream": self.stream, "seq": self.seq, "full": full, "stations": stations}
        if full:
            body["request_id"] = request_id
        return body


class TelemetryStream:
    """Decides which telemetry samples go up, and with which connectors."""

    def __init__(self, stream: str, heartbeat_s: float, step_da: int, grid_step_da: int,
                 full_min_interval_s: float = FULL_MIN_INTERVAL_S) -> None:
        self.stream = stream
        self.heartbeat_s = heartbeat_s
        self.step_da = step_da
        self.grid_step_da = grid_step_da
        self.full_min_interval_s = full_min_interval_s
        self.seq = 0
        self._site: Optional[dict] = None          # site fields as last sent
        self._allocs: Dict[Key, dict] = {}         # connector -> allocation as last sent
        self._last_sent_s: Optional[float] = None
        self._last_full_s: Optional[float] = None
        self._full_next = True
        self._requested = False

    def reset(self) -> None:
        """The next sample goes up whole (after a connect: the cloud may know nothing)."""
        self._full_next = True

    def request_full(self) -> None:
        self._requested = True

    def offer(self, sample: dict, now: float) -> Optional[dict]:
        """The body to send for this sample, or None when it is not worth sending.
        The stream keeps the sample's dicts: build a new sample each time."""
        allocs = {(a["station"], a["connector"]): a for a in sample.get("allocations") or ()}
        site = {k: v for k, v in sample.items() if k != "allocations"}
        if self._requested and (self._last_full_s is None
                                or now >= self._last_full_s + self.full_min_interval_s):
            self._full_next = True
        # A connector that went away cannot be said as a change: send the whole picture.
        if self._full_next or self._site is None or any(k not in allocs for k in self._allocs):
            self._full_next = self._requested = False
            self._last_full_s = now
            self._allocs = allocs
            return self._body(now, True, site, list(allocs.values()))
        moved = [a for k, a in allocs.items() if self._alloc_moved(self._allocs.get(k), a)]
        if not moved and not self._site_moved(site) and now < self._last_sent_s + self.heartbeat_s:
            return None
        for a in moved:
            self._allocs[(a["station"], a["connector"])] = a
        return self._body(now, False, site, moved)

    def _body(self, now: float, full: bool, site: dict, allocations: List[dict]) -> dict:
        self.seq += 1
        self._last_sent_s = now
        self._site = site
        body = dict(site)
        body.update(stream=self.stream, seq=self.seq, full=full, allocations=allocations)
        return body

    def _alloc_moved(self, old: Optional[dict], new: dict) -> bool:
        if old is None:
            return True
        for key, value in new.items():
            if key == "drawn_da":
                if _moved(old.get(key), value, self.step_da):
                    return True
            elif key == "limit_da" and isinstance(value, int) and isinstance(old.get(key), int):
                # A pause or resume always counts; a small correction of a limit does not.
                if (value == 0) != (old[key] == 0) or abs(value - old[key]) >= self.step_da:
                    return True
            elif old.get(key) != value:
                return True
        return False

    def _site_moved(self, site: dict) -> bool:
        old = self._site
        if set(old) != set(site):
            return True
        for key, value in site.items():
            if key == "grid_da":
                if _moved(old.get(key), value, self.grid_step_da):
                    return True
            elif old[key] != value:
                return True
        return False


def _moved(old: Any, new: Any, step: int) -> bool:
    """Currents per phase moved by ``step`` or more on any phase (or appeared/vanished)."""
    if old is None or new is None:
        return old is not new
    if len(old) != len(new):
        return True
    for a, b in zip(old, new):
        if a is None or b is None:
            if a is not b:
                return True
        elif abs(a - b) >= step:
            return True
    return False


def telemetry_sample(result: Any, meter: Any, live_sessions: List[dict]) -> dict:
    """A whole telemetry sample (what was decided, and from what) from an allocation
    result, the grid meter reading (or None) and the gateway's live sessions."""
    status = result.status
    live = {s["key"]: s for s in live_sessions}
    allocations = []
    for (station, connector), (limit_da, phases) in sorted(result.limits.items()):
        sess = live.get((station, connector))
        allocations.append({"station": station, "connector": connector, "limit_da": limit_da,
                            "phases": phases,
                            "drawn_da": sess.get("drawn_da") if sess else None,
                            "session_id": sess["session_id"] if sess else None})
    return {"state": status["mode"], "reason": status["reason"],
            "grid_da": list(meter.current_da) if meter is not None else None,
            "external_limit_da": status.get("site_limit_da"),
            "paused": [list(k) for k in status["paused"]],
            "allocations": allocations}


def new_stream_id() -> str:
    """8 hex digits, random per process: a restarted edge starts a new sequence."""
    return os.urandom(4).hex()
