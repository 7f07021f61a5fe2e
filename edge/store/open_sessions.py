"""The open (started, not yet completed) sessions, held in memory.

The control step needs every open session on every cycle, and so does the limit
sender; reading them from SQLite each time cost about 12 ms per query at 1,000
sessions, on the event loop. SessionStore owns one of these: it is filled from
the store when the store is opened (so a restart rebuilds it) and changed only
after the SQLite transaction that started or stopped a session has committed
(write-through), so memory never holds what the disk does not.

Readers get the records themselves through ``view()``/``of_key()`` (no copy,
hot path, must not be changed) or copies through ``copies()``.
"""
from __future__ import annotations

from typing import Any, Iterable


class OpenSessions:
    def __init__(self) -> None:
        self._by_id: dict[str, dict[str, Any]] = {}
        self._by_tx: dict[tuple[str, str], dict[str, Any]] = {}
        self._by_station: dict[str, dict[str, dict[str, Any]]] = {}
        self._by_key: dict[tuple[str, int], dict[str, Any]] = {}
        self._ordered = True        # _by_id is in started_s order
        self.version = 0            # bumped on every change (cheap "did anything change")

    def load(self, records: Iterable[dict[str, Any]]) -> None:
        """All open sessions from the store, in start order (called once at start)."""
        for rec in records:
            self.add(rec)

    def add(self, rec: dict[str, Any]) -> None:
        sid = rec["session_id"]
        if self._by_id and rec["started_s"] < next(reversed(self._by_id.values()))["started_s"]:
            self._ordered = False   # a late-reported start: sorted on the next read
        self._by_id[sid] = rec
        self._by_tx[(rec["station"], str(rec["transaction_id"]))] = rec
        self._by_station.setdefault(rec["station"], {})[sid] = rec
        key = (rec["station"], int(rec["connector"]))
        old = self._by_key.get(key)
        if old is None or old["started_s"] <= rec["started_s"]:
            self._by_key[key] = rec     # a connector runs its latest transaction
        self.version += 1

    def remove(self, session_id: str) -> None:
        rec = self._by_id.pop(session_id, None)
        if rec is None:
            return
        self._by_tx.pop((rec["station"], str(rec["transaction_id"])), None)
        of_station = self._by_station.get(rec["station"], {})
        of_station.pop(session_id, None)
        if not of_station:
            self._by_station.pop(rec["station"], None)
        key = (rec["station"], int(rec["connector"]))
        if self._by_key.get(key) is rec:
            del self._by_key[key]
            rest = [r for r in of_station.values() if int(r["connector"]) == key[1]]
            if rest:
                self._by_key[key] = max(rest, key=lambda r: r["started_s"])
        self.version += 1

    def set_meter_start(self, session_id: str, meter_start_wh: int) -> None:
        rec = self._by_id.get(session_id)
        if rec is not None and rec["meter_start_wh"] is None:
            rec["meter_start_wh"] = meter_start_wh

    # -- reads ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, session_id: str) -> dict[str, Any] | None:
        return self._by_id.get(session_id)

    def by_transaction(self, station: str, transaction_id: Any) -> dict[str, Any] | None:
        return self._by_tx.get((station, str(transaction_id)))

    def view(self) -> Iterable[dict[str, Any]]:
        """Every open record in start order (the records themselves: do not change)."""
        if not self._ordered:
            self._by_id = dict(sorted(self._by_id.items(), key=lambda kv: kv[1]["started_s"]))
            self._ordered = True
        return self._by_id.values()

    def of_key(self) -> dict[tuple[str, int], dict[str, Any]]:
        """(station, connector) -> the latest open record there (do not change)."""
        return self._by_key

    def copies(self, station: str | None = None) -> list[dict[str, Any]]:
        """Copies in start order, of one station or all."""
        if station is None:
            return [dict(r) for r in self.view()]
        recs = self._by_station.get(station)
        if not recs:
            return []
        return [dict(r) for r in sorted(recs.values(), key=lambda r: r["started_s"])]
