"""Charging profiles from the allocation: what to send, and only when it changed.

Profiles are neutral dicts here; v16/v201 turn them into wire payloads.
- one TxProfile per running transaction with the allocated limit (replaced in place: the
  id is fixed per connector, so a new profile overwrites the previous one);
- one station-wide maximum (ChargePointMaxProfile / ChargingStationMaxProfile) with the
  station's configured maximum. It outlives transactions and the edge itself: if the
  edge goes away the wallbox still never exceeds what its circuit may carry.
"""
from __future__ import annotations

from typing import Any

STATION_MAX_PROFILE_ID = 1
TX_DEFAULT_PROFILE_ID = 2
TX_PROFILE_ID_BASE = 100     # + connector id: stable per connector


# Wallbox clocks drift or reset. A profile must never depend on the wallbox's clock
# agreeing with ours, or a new (lower) limit would only apply once the wallbox's clock
# reaches our "now":
# - transaction profiles are Relative (one period from the transaction's start, no
#   startSchedule);
# - the station maximum must be Absolute (2.0.1 refuses Relative for it), so it starts
#   a day before our now.
ABSOLUTE_BACKDATE_S = 86400


def tx_profile(connector_id: int, transaction_id: Any, limit_da: int,
               phases: int) -> dict[str, Any]:
    return {"id": TX_PROFILE_ID_BASE + int(connector_id), "purpose": "tx",
            "connector": int(connector_id), "transaction_id": transaction_id,
            "stack_level": 0, "limit_da": int(limit_da), "phases": int(phases),
            "kind": "Relative", "start_s": None}


def station_max_profile(limit_da: int, phases: int, now_s: int) -> dict[str, Any]:
    return {"id": STATION_MAX_PROFILE_ID, "purpose": "station_max", "connector": 0,
            "transaction_id": None, "stack_level": 0, "limit_da": int(limit_da),
            "phases": int(phases), "kind": "Absolute",
            "start_s": int(now_s) - ABSOLUTE_BACKDATE_S}


def fallback_share_da(site: Any, station: Any) -> int:
    """Per-connector current that is safe with every connector of the site charging.

    This is the TxDefaultProfile: it governs a transaction until the edge gives it a
    TxProfile, and every transaction that starts while the edge is gone. Each circuit's
    capacity is split evenly over the connectors below it; the smallest share wins.
    """
    group = site.charging_group(station.group_id)
    n_site = max(1, len(site.connectors()))
    n_group = max(1, sum(len(s.connectors) for s in group.stations)) if group else n_site
    shares = [station.max_da // max(1, len(station.connectors)),
              (site.grid_max_da - site.margin_da) // n_site]
    if group is not None:
        shares.append(group.max_da // n_group)
    return max(0, min(shares))


def fallback_limits_da(site: Any) -> dict[str, int]:
    """The TxDefaultProfile limit of every station: never between 0 and a car's minimum.

    A wallbox applies it to any connector, and a car cannot charge below its minimum
    (IEC 61851: 6 A): a smaller limit pauses or faults it, so the current reserved for
    it is wasted. So:
    1. a station whose even share (``fallback_share_da``) reaches the largest minimum of
       its connectors gets that share;
    2. the others, in configuration order, get that minimum while the station, its
       charging group and the grid (less the margin) still have room for it on every
       one of the station's connectors, after what step 1 gave;
    3. the rest get 0: a car there waits for the edge's own limit.
    Like the share, it is safe with every connector of the site charging at once.
    """
    out: dict[str, int] = {}
    grid_left = site.grid_max_da - site.margin_da
    group_left: dict[str, int] = {}
    short = []
    for st in site.stations():
        group = site.charging_group(st.group_id)
        if group is not None and st.group_id not in group_left:
            group_left[st.group_id] = group.max_da
        share = fallback_share_da(site, st)
        floor = max([c.min_da for c in st.connectors] or [0])
        if share >= floor:
            out[st.id] = share
            grid_left -= share * len(st.connectors)
            if st.group_id in group_left:
                group_left[st.group_id] -= share * len(st.connectors)
        else:
            short.append((st, floor))
    for st, floor in short:
        need = floor * len(st.connectors)
        room = min(st.max_da, grid_left, group_left.get(st.group_id, grid_left))
        if 0 < need <= room:
            out[st.id] = floor
            grid_left -= need
            if st.group_id in group_left:
                group_left[st.group_id] -= need
        else:
            out[st.id] = 0
    return out


def tx_default_profile(limit_da: int) -> dict[str, Any]:
    # Relative: from each transaction's start, whatever the wallbox's clock says.
    return {"id": TX_DEFAULT_PROFILE_ID, "purpose": "tx_default", "connector": 0,
            "transaction_id": None, "stack_level": 0, "limit_da": int(limit_da),
            "phases": 0, "kind": "Relative", "start_s": None}


class ProfileTracker:
    """Last profile sent per connector, so unchanged limits are not sent again."""

    def __init__(self) -> None:
        self._sent: dict[int, tuple[Any, int, int, bool]] = {}

    def unchanged(self, connector_id: int, transaction_id: Any, limit_da: int, phases: int) -> bool:
        last = self._sent.get(connector_id)
        return last is not None and last[:3] == (str(transaction_id), limit_da, phases)

    def record(self, connector_id: int, transaction_id: Any, limit_da: int, phases: int,
               accepted: bool) -> None:
        self._sent[connector_id] = (str(transaction_id), limit_da, phases, accepted)

    def last(self, connector_id: int) -> tuple[Any, int, int, bool] | None:
        return self._sent.get(connector_id)

    def forget(self, connector_id: int | None = None) -> None:
        """Forget one connector (transaction ended) or all (wallbox rebooted)."""
        if connector_id is None:
            self._sent.clear()
        else:
            self._sent.pop(connector_id, None)

    def any_rejected(self) -> bool:
        return any(not v[3] for v in self._sent.values())
