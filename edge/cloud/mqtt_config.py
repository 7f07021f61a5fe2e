"""The validated ``cloud:`` settings of the site file: broker, credentials, TLS, timing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from edge.core.errors import ValidationError

PROTOCOLS = ("auto", "5", "3.1.1")


@dataclass
class TlsConfig:
    ca_file: Optional[str] = None       # None: the system's trusted CAs
    cert_file: Optional[str] = None     # client certificate (the site's identity)
    key_file: Optional[str] = None
    insecure_skip_hostname: bool = False


@dataclass
class LinkConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: Optional[str] = None
    password: Optional[str] = None
    client_id: Optional[str] = None     # default "edge-<site_id>": stable, the session key
    protocol: str = "auto"
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    connect_timeout_s: float = 10.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    drain_poll_s: float = 1.0           # outbox re-check without a notify_outbox()
    resend_after_s: float = 60.0        # an unacknowledged batch is sent again
    batch_window: int = 4               # unacknowledged record batches in flight
    command_timeout_s: float = 90.0     # on_command must answer within this
    # Upstream frugality (edge/cloud/upstream.py): station status changes are coalesced
    # into at most one message per status_every_s; a telemetry sample goes up only when
    # a connector's limit or current moved by telemetry_step_da, the grid's by
    # telemetry_grid_step_da, or anything else changed; else a heartbeat.
    status_every_s: float = 5.0
    telemetry_heartbeat_s: float = 900.0
    telemetry_step_da: int = 10
    telemetry_grid_step_da: int = 20
    # MQTT 5 Maximum Packet Size: the broker drops larger messages for us instead of a
    # small board allocating them (the protocol's largest message is a 32 MiB snapshot).
    max_packet_bytes: int = 33 * 1024 * 1024
    stop_timeout_s: float = 5.0
    tls: Optional[TlsConfig] = None
    # Online authorization of tokens the lists lack (edge/authorizer.py): the wallbox's
    # answer waits at most auth_deadline_s; at most auth_max_in_flight questions are
    # outstanding at the cloud, each for at most auth_hold_s; refusals are remembered
    # auth_negative_s; at most auth_cache_entries accepted tokens are cached.
    online_auth: bool = True
    auth_deadline_s: float = 3.0
    auth_max_in_flight: int = 8
    auth_hold_s: float = 10.0
    auth_negative_s: float = 30.0
    auth_cache_entries: int = 10000

    @classmethod
    def from_dict(cls, d: Dict[str, Any], field: str = "cloud") -> "LinkConfig":
        """Validates a config file's ``cloud:`` part; refuses unknown keys."""
        if not isinstance(d, dict):
            raise ValidationError(field, d, "must be an object")
        known = set(cls.__dataclass_fields__)
        for key in d:
            if key not in known:
                raise ValidationError("%s.%s" % (field, key), d[key], "unknown setting")
        cfg = cls()
        for key, value in d.items():
            path = "%s.%s" % (field, key)
            if key == "tls":
                value = _tls_from(value, path)
            elif key in ("host", "username", "password", "client_id", "protocol"):
                if value is not None and not isinstance(value, str):
                    raise ValidationError(path, value, "must be a text")
            elif key == "online_auth":
                if not isinstance(value, bool):
                    raise ValidationError(path, value, "must be true or false")
            elif key in ("port", "keepalive_s", "session_expiry_s", "batch_window",
                         "max_packet_bytes", "auth_max_in_flight", "auth_cache_entries",
                         "telemetry_step_da", "telemetry_grid_step_da"):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValidationError(path, value, "must be an integer")
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValidationError(path, value, "must be a number")
            setattr(cfg, key, value)
        cfg.check(field)
        return cfg

    def check(self, field: str = "cloud") -> None:
        if not self.host:
            raise ValidationError(field + ".host", self.host, "must not be empty")
        if not 1 <= self.port <= 65535:
            raise ValidationError(field + ".port", self.port, "must be 1..65535")
        if self.protocol not in PROTOCOLS:
            raise ValidationError(field + ".protocol", self.protocol,
                                  "must be one of %s" % ", ".join(PROTOCOLS))
        if not 5 <= self.keepalive_s <= 3600:
            raise ValidationError(field + ".keepalive_s", self.keepalive_s, "must be 5..3600")
        if not 0 <= self.session_expiry_s <= 0xFFFFFFFF:
            raise ValidationError(field + ".session_expiry_s", self.session_expiry_s,
                                  "must be 0..4294967295")
        if not 64 * 1024 <= self.max_packet_bytes <= 268435455:
            raise ValidationError(field + ".max_packet_bytes", self.max_packet_bytes,
                                  "must be 65536..268435455")
        if not 1 <= self.batch_window <= 64:
            raise ValidationError(field + ".batch_window", self.batch_window, "must be 1..64")
        if not 0 < self.auth_deadline_s <= 30:
            raise ValidationError(field + ".auth_deadline_s", self.auth_deadline_s,
                                  "must be above 0 and at most 30 s (wallboxes time out soon after)")
        if not 1 <= self.auth_max_in_flight <= 1000:
            raise ValidationError(field + ".auth_max_in_flight", self.auth_max_in_flight, "must be 1..1000")
        if not 1 <= self.auth_cache_entries <= 1_000_000:
            raise ValidationError(field + ".auth_cache_entries", self.auth_cache_entries,
                                  "must be 1..1000000")
        for name in ("connect_timeout_s", "backoff_base_s", "backoff_cap_s", "drain_poll_s",
                     "resend_after_s", "stop_timeout_s", "command_timeout_s", "auth_hold_s",
                     "auth_negative_s"):
            if not getattr(self, name) > 0:
                raise ValidationError("%s.%s" % (field, name), getattr(self, name), "must be > 0")
        if not 0.1 <= self.status_every_s <= 3600:
            raise ValidationError(field + ".status_every_s", self.status_every_s, "must be 0.1..3600")
        if not 10 <= self.telemetry_heartbeat_s <= 86400:
            raise ValidationError(field + ".telemetry_heartbeat_s", self.telemetry_heartbeat_s,
                                  "must be 10..86400")
        for name in ("telemetry_step_da", "telemetry_grid_step_da"):
            if not 1 <= getattr(self, name) <= 1000:
                raise ValidationError("%s.%s" % (field, name), getattr(self, name), "must be 1..1000")
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValidationError(field + ".backoff_cap_s", self.backoff_cap_s,
                                  "must be >= backoff_base_s")
        if self.password is not None and self.username is None:
            raise ValidationError(field + ".password", "***", "needs a username")


def _tls_from(value: Any, path: str) -> Optional[TlsConfig]:
    if value is None or isinstance(value, TlsConfig):
        return value
    if not isinstance(value, dict):
        raise ValidationError(path, value, "must be an object or null")
    tls = TlsConfig()
    for key, item in value.items():
        if key not in TlsConfig.__dataclass_fields__:
            raise ValidationError("%s.%s" % (path, key), item, "unknown setting")
        if key == "insecure_skip_hostname":
            if not isinstance(item, bool):
                raise ValidationError("%s.%s" % (path, key), item, "must be true or false")
        elif item is not None and not isinstance(item, str):
            raise ValidationError("%s.%s" % (path, key), item, "must be a file path")
        setattr(tls, key, item)
    if (tls.cert_file is None) != (tls.key_file is None):
        raise ValidationError(path + ".key_file", tls.key_file,
                              "cert_file and key_file go together")
    return tls
