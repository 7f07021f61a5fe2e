"""What the gateway knows about one wallbox; survives reconnects of that wallbox."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from edge.ocpp_gateway.local_list import ListState
from edge.ocpp_gateway.profiles import ProfileTracker

# (transaction id, seqNo) pairs remembered per station: 8 per recent message is plenty.
SEQ_SEEN_MAX = 512


class StationState:
    def __init__(self, station_id: str, cfg_station: Any) -> None:
        self.id = station_id
        self.cfg = cfg_station              # edge.core.topology.Station
        self.version: str | None = None     # "1.6" / "2.0.1" of the current/last link
        self.link: Any = None               # the version-specific ChargePoint while connected
        self.link_seq = 0                   # increments per connection
        self.peer: Any = None
        self.boot: dict[str, Any] | None = None
        self.booted = False
        self.last_seen_s: int | None = None
        self.connected_since_s: int | None = None
        self.connector_status: dict[int, str] = {}
        self.connector_error: dict[int, str | None] = {}   # None = no error
        self.drawn_da: dict[int, list[int]] = {}      # per connector, per site phase
        self.drawn_at_s: dict[int, int] = {}          # when that sample was taken (wallbox clock)
        self.controllable = True
        # Calls received per action and frames refused per action or error code, for
        # the metrics (edge.web.metrics); they only ever grow.
        self.calls_in: dict[str, int] = {}
        self.errors_out: dict[str, int] = {}
        self.settings: dict[str, str] = {}  # neutral setting name -> wallbox's answer
        self.profiles = ProfileTracker()
        self.station_max_sent: tuple[int, bool] | None = None
        self.local_list = ListState()
        self.list_limits_read = False       # read once per edge run, again until it works
        self.list_max_entries: int | None = None
        self.list_chunk: int | None = None
        self.list_max_bytes: int | None = None   # 2.0.1 BytesPerMessage
        self.list_supported = True          # False after NotSupported / version -1
        # remote starts waiting for the wallbox's StartTransaction: id tag -> info
        self.pending_remote: dict[str, dict[str, Any]] = {}
        # 2.0.1 transactions seen before their id token arrived: tx id -> start info
        self.pending_tx: dict[str, dict[str, Any]] = {}
        # 2.0.1 (transaction id, seqNo) already processed: a wallbox retransmits queued
        # events with new message ids, and samples must not be recorded twice
        self.tx_seq_seen: OrderedDict[tuple, None] = OrderedDict()

    @property
    def connected(self) -> bool:
        return self.link is not None

    def first_time_seq(self, tx_id: str, seq_no: int) -> bool:
        key = (tx_id, seq_no)
        if key in self.tx_seq_seen:
            return False
        self.tx_seq_seen[key] = None
        while len(self.tx_seq_seen) > SEQ_SEEN_MAX:
            self.tx_seq_seen.popitem(last=False)
        return True

    def status(self) -> dict[str, Any]:
        return {
            "station": self.id,
            "connected": self.connected,
            "version": self.version,
            "booted": self.booted,
            "boot": dict(self.boot) if self.boot else None,
            "last_seen_s": self.last_seen_s,
            "connectors": dict(self.connector_status),
            "connector_errors": dict(self.connector_error),
            "controllable": self.controllable,
            "settings": dict(self.settings),
            "local_list_version": self.local_list.version,
            "local_list_entries": len(self.local_list.entries),
            "local_list_max": self.list_max_entries,
        }
