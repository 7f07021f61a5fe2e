"""What the gateway knows about one wallbox; survives reconnects of that wallbox."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from edge.ocpp_gateway.local_list import ListState
from edge.ocpp_gateway.profiles import ProfileTracker

# 2.0.1 duplicate events: per transaction the highest seqNo seen and a bit mask of the
# SEQ_WINDOW numbers below it (wallboxes send a transaction's events in order, so a
# retransmission is recent). Only the last SEQ_TX_MAX transactions of a station are
# remembered: a station has a few EVSEs. ~2 KB per station, whatever the traffic
# (a 512-entry (transaction id, seqNo) memory was ~130 KB per busy station).
SEQ_WINDOW = 64
SEQ_TX_MAX = 8
# Connector ids recorded per station beyond the configured ones (a wallbox reporting
# junk ids must not grow the status dicts without bound).
SPARE_CONNECTOR_IDS = 4
# Remote starts waiting for their car, per station (each also lapses after
# ocpp.remote_start_ttl_s): a station has a few connectors.
MAX_PENDING_REMOTE = 8


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
        self.profiles_unsupported = False   # answered NotImplemented/NotSupported; until boot
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
        self.tx_seq_seen: OrderedDict[str, list[int]] = OrderedDict()   # tx -> [high, mask]

    @property
    def connected(self) -> bool:
        return self.link is not None

    def first_time_seq(self, tx_id: str, seq_no: int) -> bool:
        """True the first time (transaction, seqNo) is seen (see SEQ_WINDOW)."""
        seen = self.tx_seq_seen.get(tx_id)
        if seen is None:
            self.tx_seq_seen[tx_id] = [seq_no, 1]
            while len(self.tx_seq_seen) > SEQ_TX_MAX:
                self.tx_seq_seen.popitem(last=False)
            return True
        self.tx_seq_seen.move_to_end(tx_id)
        high, mask = seen
        if seq_no > high:
            shift = seq_no - high
            seen[0] = seq_no
            seen[1] = ((mask << shift) | 1) & ((1 << SEQ_WINDOW) - 1) if shift < SEQ_WINDOW else 1
            return True
        back = high - seq_no
        if back >= SEQ_WINDOW:
            return True        # older than the window: cannot tell, record it (as before)
        if mask >> back & 1:
            return False
        seen[1] = mask | (1 << back)
        return True

    def accepts_connector(self, connector_id: int) -> bool:
        """Whether status for this connector id is recorded (bounded per station)."""
        if connector_id in self.connector_status:
            return True
        if connector_id == 0 or any(c.id == connector_id for c in self.cfg.connectors):
            return True
        return len(self.connector_status) < len(self.cfg.connectors) + 1 + SPARE_CONNECTOR_IDS

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
            "profiles_unsupported": self.profiles_unsupported,
            "settings": dict(self.settings),
            "local_list_version": self.local_list.version,
            "local_list_entries": len(self.local_list.entries),
            "local_list_max": self.list_max_entries,
        }
