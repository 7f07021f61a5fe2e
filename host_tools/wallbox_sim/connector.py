"""One connector's observable state, and how connectors share a station maximum."""
from __future__ import annotations

from .model import EV, Tx

VOLTS = 230.0  # per phase


def fair_shares(cap: float, wants: dict) -> dict:
    """Split `cap` so nobody gets more than it wants and the rest share equally
    (how a wallbox with several outlets divides its own maximum)."""
    left, out = cap, {}
    pending = sorted(wants.items(), key=lambda kv: kv[1])
    while pending:
        share = left / len(pending)
        key, want = pending[0]
        if want <= share:
            out[key] = want
            left -= want
            pending.pop(0)
        else:
            for key, _ in pending:
                out[key] = share
            break
    return out


class Connector:
    """Observable state of one connector (what a live display shows)."""

    def __init__(self, station_id: str, connector_id: int, phases: int, max_a: float) -> None:
        self.station_id = station_id
        self.id = connector_id
        self.phases = phases
        self.max_a = max_a
        self.ev: EV | None = None
        self.tx: Tx | None = None
        self.state = "Available"   # OCPP 1.6 status names, used for both versions
        self.limit_a: float | None = None   # from profiles (incl. station cap); None: none
        self.offered_a = 0.0       # what the wallbox offers the car now
        self.drawn_a = 0.0         # what the car draws per phase
        self.drawn_phases = 0
        self.target_a = 0.0        # what the car will draw once it has followed
        self.target_phases = 0
        self.meter_ws = 0.0        # energy register in watt-seconds (exact for whole amps)
        self.last_s: float | None = None
        self.full = False
        self.inoperative = False   # ChangeAvailability Inoperative (now or after the session)

    @property
    def meter_wh(self) -> float:
        return self.meter_ws / 3600.0

    @property
    def session_wh(self) -> float:
        return self.meter_wh - self.tx.meter_start_wh if self.tx else 0.0

    def snapshot(self) -> dict:
        return {"station": self.station_id, "connector": self.id, "state": self.state,
                "id_tag": self.tx.id_tag if self.tx else (self.ev.id_tag if self.ev else None),
                "transaction_id": self.tx.server_id if self.tx else None,
                "limit_a": self.limit_a, "offered_a": self.offered_a,
                "drawn_a": self.drawn_a, "phases": self.drawn_phases,
                "session_wh": int(self.session_wh), "meter_wh": int(self.meter_wh),
                "need_wh": self.ev.need_wh if self.ev else None}
