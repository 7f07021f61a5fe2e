"""The site configuration file (TOML or JSON) -> one validated ``EdgeConfig``.

Sections and who checks them:
  site             edge.core.topology.Site.from_dict (the topology)
  load_management  edge.core.alloc_config.AllocConfig.from_dict
  meters           edge.meters.config.parse_meters
  nodes            edge.meters.node_source.NodeBrokerConfig (optional: the broker meter nodes publish to)
  ocpp             here (listen address, TLS, station passwords)
  cloud            edge.cloud.mqtt_config.LinkConfig.from_dict (optional: no section, no cloud)
  store, control   here (store.retention: edge.store.retention.RetentionPolicy.from_dict)
  http             edge.web.settings.parse_http (optional: no section, no local API)
Everything is checked before anything starts; the first error names the field.
"""
from __future__ import annotations

import json
import ssl
import tomllib
from pathlib import Path
from typing import Any

from edge.core.alloc_config import AllocConfig
from edge.core.errors import ValidationError
from edge.core.topology import Site
from edge.meters.config import MeterConfig, parse_meters
from edge.store.retention import RetentionPolicy
from edge.store.space import DEFAULT_MIN_FREE_MB, MAX_MIN_FREE_MB, MIN_MIN_FREE_MB

SECTIONS = ("site", "load_management", "meters", "ocpp", "cloud", "store", "control", "nodes", "http")
_OCPP_KEYS = ("host", "port", "tls_cert", "tls_key", "stations", "meter_interval_s", "heartbeat_s")
_STATION_KEYS = ("password",)
_CONTROL_KEYS = ("interval_s", "grid_meter", "telemetry_every_s")
_STORE_KEYS = ("path", "retention", "min_free_mb")


class OcppSettings:
    def __init__(self, host: str, port: int, tls_cert: str | None, tls_key: str | None,
                 stations: dict[str, dict], meter_interval_s: int = 10, heartbeat_s: int = 300):
        self.host = host
        self.port = port
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.stations = stations          # {station_id: {"password": str | None}}
        self.meter_interval_s = meter_interval_s
        self.heartbeat_s = heartbeat_s

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS (OCPP security profile 2) when a certificate is configured."""
        if not self.tls_cert:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ValidationError("ocpp.tls_cert", self.tls_cert,
                                  f"cannot load certificate/key ({exc}); check both paths and that the key matches") from None
        return ctx


class EdgeConfig:
    nodes: Any = None                     # NodeBrokerConfig, or None (no meter nodes)

    def __init__(self, site: Site, alloc: AllocConfig, meters: list[MeterConfig], ocpp: OcppSettings,
                 cloud: Any, store_path: str, interval_s: float, grid_meter: str | None,
                 telemetry_every_s: int, retention: RetentionPolicy | None = None):
        self.site = site
        self.alloc = alloc
        self.meters = meters
        self.ocpp = ocpp
        self.cloud = cloud                # LinkConfig or None (no cloud)
        self.store_path = store_path
        self.interval_s = interval_s
        self.grid_meter = grid_meter
        self.telemetry_every_s = telemetry_every_s
        self.retention = retention or RetentionPolicy()
        # below this much free space on the store's disk new sessions are refused
        # (edge/store/space.py); 0: no floor
        self.min_free_mb = DEFAULT_MIN_FREE_MB
        self.http: Any = None             # edge.web.settings.HttpSettings or None (off)


def _keys(d: Any, field: str, known: tuple[str, ...]) -> dict:
    if not isinstance(d, dict):
        raise ValidationError(field, d, "must be a table/object")
    for key in d:
        if key not in known:
            raise ValidationError(f"{field}.{key}", d[key], f"unknown setting; known: {', '.join(known)}")
    return d


def _port(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValidationError(field, value, "must be a port number 0..65535 (0: any free port)")
    return value


def _text(value: Any, field: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, value, "must be a non-empty text")
    return value


def parse_ocpp(d: Any, site: Site) -> OcppSettings:
    d = _keys(d if d is not None else {}, "ocpp", _OCPP_KEYS)
    host = _text(d.get("host", "0.0.0.0"), "ocpp.host")
    port = _port(d.get("port", 9000), "ocpp.port")
    cert = _text(d.get("tls_cert"), "ocpp.tls_cert", optional=True)
    key = _text(d.get("tls_key"), "ocpp.tls_key", optional=True)
    if bool(cert) != bool(key):
        raise ValidationError("ocpp.tls_key" if cert else "ocpp.tls_cert", key or cert,
                              "TLS needs both tls_cert and tls_key")
    raw = d.get("stations", {})
    if not isinstance(raw, dict):
        raise ValidationError("ocpp.stations", raw, "must be a table of station id -> settings")
    stations: dict[str, dict] = {}
    for sid, st in raw.items():
        field = f"ocpp.stations.{sid}"
        if site.station(sid) is None:
            raise ValidationError(field, sid, "is not a station of the site (add it under site.charging_groups)")
        st = _keys(st, field, _STATION_KEYS)
        pw = _text(st.get("password"), f"{field}.password", optional=True)
        if pw is not None and not 16 <= len(pw) <= 40:
            # OCPP security profile 1: the AuthorizationKey is 16 to 40 characters.
            raise ValidationError(f"{field}.password", "***", "must be 16 to 40 characters (OCPP AuthorizationKey)")
        stations[sid] = {"password": pw}
    for station in site.stations():
        stations.setdefault(station.id, {"password": None})
    # The allocation learns what each car really draws from these samples: 10 s keeps
    # its picture fresh without flooding (500 wallboxes: 50 messages a second).
    meter_s = _int_range(d.get("meter_interval_s", 10), "ocpp.meter_interval_s", 1, 900)
    heartbeat_s = _int_range(d.get("heartbeat_s", 300), "ocpp.heartbeat_s", 10, 86400)
    return OcppSettings(host, port, cert, key, stations, meter_s, heartbeat_s)


def _int_range(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValidationError(field, value, f"must be a whole number from {lo} to {hi}")
    return value


def from_dict(d: Any) -> EdgeConfig:
    d = _keys(d, "config", SECTIONS)
    if "site" not in d:
        raise ValidationError("site", None, "is required: the topology of the site")
    try:
        site = Site.from_dict(d["site"])
    except ValidationError as exc:
        # The topology names fields from its own root; the file's root is one up.
        raise ValidationError(f"site.{exc.field}", exc.value, exc.message) from None
    alloc = AllocConfig.from_dict(d.get("load_management"))
    meters = parse_meters(d.get("meters", []))
    from edge.meters.node_source import NodeBrokerConfig, check_node_meters
    nodes = NodeBrokerConfig.from_dict(d["nodes"]) if d.get("nodes") is not None else None
    check_node_meters(meters, nodes)
    ocpp = parse_ocpp(d.get("ocpp"), site)
    cloud = None
    if d.get("cloud") is not None:
        from edge.cloud.mqtt_config import LinkConfig
        cloud = LinkConfig.from_dict(d["cloud"])
    store = _keys(d.get("store", {}), "store", _STORE_KEYS)
    store_path = _text(store.get("path", "edge.db"), "store.path")
    retention = RetentionPolicy.from_dict(store.get("retention"), "store.retention")
    min_free_mb = _int_range(store.get("min_free_mb", DEFAULT_MIN_FREE_MB), "store.min_free_mb",
                             0, MAX_MIN_FREE_MB)
    if 0 < min_free_mb < MIN_MIN_FREE_MB:
        raise ValidationError("store.min_free_mb", min_free_mb,
                              f"must be 0 (no floor) or at least {MIN_MIN_FREE_MB}: the store's"
                              " write-ahead log alone may take 4 MB")
    control = _keys(d.get("control", {}), "control", _CONTROL_KEYS)
    interval = control.get("interval_s", 1)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0.1 <= interval <= 60:
        raise ValidationError("control.interval_s", interval, "must be 0.1 to 60 seconds")
    telemetry = control.get("telemetry_every_s", 10)
    if isinstance(telemetry, bool) or not isinstance(telemetry, int) or not 1 <= telemetry <= 3600:
        raise ValidationError("control.telemetry_every_s", telemetry, "must be 1 to 3600 seconds")
    meter_ids = [m.id for m in meters]
    grid_meter = control.get("grid_meter", meter_ids[0] if meter_ids else None)
    if grid_meter is not None and grid_meter not in meter_ids:
        raise ValidationError("control.grid_meter", grid_meter,
                              f"is not a configured meter id (have: {', '.join(meter_ids) or 'none'})")
    cfg = EdgeConfig(site, alloc, meters, ocpp, cloud, store_path, float(interval), grid_meter, telemetry,
                     retention=retention)
    cfg.nodes = nodes
    cfg.min_free_mb = min_free_mb
    from edge.web.settings import parse_http
    cfg.http = parse_http(d.get("http"))
    return cfg


def read_file(path: str | Path) -> dict:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationError("config", str(path), f"cannot be read: {exc.strerror}") from None
    try:
        if path.suffix == ".json":
            return json.loads(raw)
        return tomllib.loads(raw.decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise ValidationError(path.name, f"line {exc.lineno} column {exc.colno}", f"is not valid JSON: {exc.msg}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(path.name, str(path), f"is not valid TOML: {exc}") from None


def load(path: str | Path) -> EdgeConfig:
    return from_dict(read_file(path))
