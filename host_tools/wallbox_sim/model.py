"""Plain data of the simulated world: specs given by the caller, EVs, sessions."""
from __future__ import annotations

from dataclasses import dataclass, field

VERSIONS = ("1.6", "2.0.1")
MIN_EV_CURRENT_A = 6.0  # IEC 61851: below 6 A a car pauses instead of charging


@dataclass
class ConnectorSpec:
    phases: int = 3
    max_current_a: float = 32.0


@dataclass
class EV:
    """A car at a connector. `id_tag` None: plugged in, waiting for a remote start."""
    id_tag: str | None
    need_wh: float
    max_current_a: float = 16.0
    phases: int = 3
    leave_when_full: bool = False
    stay_s: float | None = None   # leaves after this long (simulated seconds)

    def __post_init__(self) -> None:
        if not self.need_wh > 0:
            raise ValueError("need_wh: must be > 0 (got %r)" % (self.need_wh,))
        if not self.max_current_a > 0:
            raise ValueError("max_current_a: must be > 0 (got %r)" % (self.max_current_a,))
        if self.phases not in (1, 2, 3):
            raise ValueError("phases: must be 1, 2 or 3 (got %r)" % (self.phases,))


@dataclass
class StationSpec:
    id: str
    version: str = "1.6"
    connectors: list[ConnectorSpec] | int = 1
    password: str | None = None
    vendor: str = "SimVendor"
    model: str = "SimBox"
    accept_profiles: bool = True          # False: an uncontrollable wallbox
    local_list_max: int = 48
    local_list_per_message: int = 25
    local_list_bytes_per_message: int = 4096   # 2.0.1 BytesPerMessage
    meter_interval_s: int = 10
    heartbeat_s: int | None = None        # None: use the interval the server gives
    response_delay_s: float = 3.0         # how slowly the car follows a new limit
    max_profiles: int = 16
    max_periods: int = 24
    default_ev: EV = field(default_factory=lambda: EV(None, 20000.0, 16.0))

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id or "/" in self.id:
            raise ValueError("id: must be a non-empty name without '/' (got %r)" % (self.id,))
        if self.version not in VERSIONS:
            raise ValueError("version: must be 1.6 or 2.0.1 (got %r)" % (self.version,))
        if isinstance(self.connectors, int):
            if self.connectors < 1:
                raise ValueError("connectors: must be >= 1 (got %r)" % (self.connectors,))
            self.connectors = [ConnectorSpec() for _ in range(self.connectors)]
        for i, c in enumerate(self.connectors):
            if c.phases not in (1, 3):
                raise ValueError("connectors[%d].phases: must be 1 or 3 (got %r)" % (i, c.phases))
            if not c.max_current_a > 0:
                raise ValueError("connectors[%d].max_current_a: must be > 0 (got %r)"
                                 % (i, c.max_current_a))
        for name, low in (("local_list_max", 0), ("local_list_per_message", 1),
                          ("local_list_bytes_per_message", 1), ("max_profiles", 1),
                          ("max_periods", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError("%s: must be an integer >= %d (got %r)" % (name, low, value))
        if self.heartbeat_s is not None and not self.heartbeat_s > 0:
            raise ValueError("heartbeat_s: must be > 0 or None (got %r)" % (self.heartbeat_s,))
        if self.meter_interval_s <= 0:
            raise ValueError("meter_interval_s: must be > 0 (got %r)" % (self.meter_interval_s,))
        if self.response_delay_s < 0:
            raise ValueError("response_delay_s: must be >= 0 (got %r)" % (self.response_delay_s,))


@dataclass
class Tx:
    """One charging session as the wallbox sees it."""
    local_id: int
    id_tag: str
    started_s: float
    meter_start_wh: int
    started_offline: bool
    server_id: str | None = None     # 1.6: given by the server; 2.0.1: made here
    remote_start_id: int | None = None
    seq_no: int = 0                  # 2.0.1 TransactionEvent sequence
    stopped_s: float | None = None
    stop_reason: str | None = None
    rejected: bool = False           # server refused the token after an offline start

    def next_seq(self) -> int:
        n = self.seq_no
        self.seq_no += 1
        return n


@dataclass
class Record:
    """A message waiting to go out, built when the event happened."""
    kind: str                 # "start", "meter", "stop", "status"
    connector_id: int
    at_s: float
    offline: bool
    tx: Tx | None = None
    data: dict = field(default_factory=dict)
