"""Meter configuration (the ``meters:`` list of the site file) -> MeterConfig.

Everything is validated before anything is built; an error names the field,
e.g. ``meters[1].device_id: must be between 1 and 247 (got 0)``. Unknown keys
are refused too: a misspelt ``timout_s`` must not silently become the default.
"""

from __future__ import annotations

import math
from typing import Any

from edge.core.errors import ValidationError
from edge.meters.model import MeterModel, load_model
from edge.meters.transport import TRANSPORTS

BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
_KEYS = {"id", "model", "transport", "host", "port", "serial_port", "baudrate", "parity",
         "stopbits", "bytesize", "device_id", "interval_s", "timeout_s", "retries",
         "stale_after_s", "source", "node"}
SOURCES = ("modbus", "node")
# A meter read by a meter node (edge/node) takes its bus settings from the node.
_NODE_KEYS = {"id", "model", "source", "node", "device_id", "stale_after_s"}


class MeterConfig:
    """One configured meter. Build with ``MeterConfig.from_dict``."""

    def __init__(self, **values: Any):
        self.id: str = values["id"]
        self.model: MeterModel = values["model"]
        self.transport: str = values["transport"]
        self.host: str | None = values.get("host")
        self.port: int = values.get("port", 502)
        self.serial_port: str | None = values.get("serial_port")
        self.baudrate: int = values.get("baudrate", 9600)
        self.parity: str = values.get("parity", "N")
        self.stopbits: int = values.get("stopbits", 1)
        self.bytesize: int = values.get("bytesize", 8)
        self.device_id: int = values.get("device_id", 1)
        self.interval_s: float = values.get("interval_s", 1.0)
        self.timeout_s: float = values.get("timeout_s", 0.5)
        self.retries: int = values.get("retries", 1)
        self.stale_after_s: float = values.get("stale_after_s", 5.0)
        self.source: str = values.get("source", "modbus")
        self.node: str | None = values.get("node")       # the meter node's id (source "node")

    def link_key(self) -> tuple:
        """Meters with the same key share one connection (bus or gateway)."""
        if self.source == "node":
            return ("node", self.node)
        if self.transport == "rtu":
            return ("rtu", self.serial_port)
        return (self.transport, self.host, self.port)

    @classmethod
    def from_dict(cls, data: Any, field: str = "meter") -> "MeterConfig":
        if not isinstance(data, dict):
            raise ValidationError(field, data, "must be an object")
        for key in data:
            if key not in _KEYS:
                raise ValidationError("%s.%s" % (field, key), data[key], "is not a meter setting")
        f = lambda key: "%s.%s" % (field, key)  # noqa: E731
        values: dict[str, Any] = {}
        mid = data.get("id")
        if not isinstance(mid, str) or not mid or len(mid) > 64 or any(c <= " " for c in mid):
            raise ValidationError(f("id"), mid, "must be a text id without spaces")
        values["id"] = mid
        name = data.get("model")
        try:
            values["model"] = load_model(name)
        except ValidationError as exc:
            raise ValidationError(f("model"), name, exc.message) from None
        source = data.get("source", "modbus")
        if source not in SOURCES:
            raise ValidationError(f("source"), source, "must be one of %s" % ", ".join(SOURCES))
        if source == "node":
            return cls._node_meter(data, values, f)
        transport = data.get("transport", "tcp")
        if transport not in TRANSPORTS:
            raise ValidationError(f("transport"), transport, "must be one of %s" % ", ".join(TRANSPORTS))
        values["transport"] = transport
        if transport == "rtu":
            port = data.get("serial_port")
            if not isinstance(port, str) or not port.strip():
                raise ValidationError(f("serial_port"), port, "is required for transport rtu (e.g. /dev/ttyUSB0)")
            values["serial_port"] = port
            values["baudrate"] = _choice(data, "baudrate", BAUDRATES, 9600, f)
            values["parity"] = _choice(data, "parity", ("N", "E", "O"), "N", f)
            values["stopbits"] = _choice(data, "stopbits", (1, 2), 1, f)
            values["bytesize"] = _choice(data, "bytesize", (7, 8), 8, f)
            values["device_id"] = _int(data, "device_id", 1, 247, 1, f)
        else:
            host = data.get("host")
            if not isinstance(host, str) or not host.strip() or any(c <= " " for c in host):
                raise ValidationError(f("host"), host, "is required for transport %s" % transport)
            values["host"] = host
            values["port"] = _int(data, "port", 1, 65535, 502, f)
            # Modbus TCP devices often answer to unit id 255 or 0 as "this device".
            low = 1 if transport == "rtu_over_tcp" else 0
            high = 247 if transport == "rtu_over_tcp" else 255
            values["device_id"] = _int(data, "device_id", low, high, 1, f)
        values["interval_s"] = _poll_interval(data, f)
        values["timeout_s"] = _seconds(data, "timeout_s", 0.01, 30, 0.5, f)
        values["retries"] = _int(data, "retries", 0, 5, 1, f)
        values["stale_after_s"] = _seconds(data, "stale_after_s", 0.1, 86400, 5.0, f)
        return cls(**values)


    @classmethod
    def _node_meter(cls, data: dict, values: dict, f) -> "MeterConfig":
        from edge.node.config import valid_node_id
        for key in data:
            if key not in _NODE_KEYS:
                raise ValidationError(f(key), data[key], "is set on the meter node (edge flash), not here")
        node = data.get("node")
        if not valid_node_id(node):
            raise ValidationError(f("node"), node, "must be the node's id: 1 to 32 lower-case letters, "
                                                   "digits, '-' or '_'")
        values.update(source="node", node=node, transport="node",
                      device_id=_int(data, "device_id", 1, 247, 1, f),
                      stale_after_s=_seconds(data, "stale_after_s", 0.1, 86400, 5.0, f))
        return cls(**values)


def parse_meters(data: Any, field: str = "meters") -> list[MeterConfig]:
    """The whole ``meters`` list; ids must be unique, as must bus + device id."""
    if not isinstance(data, list):
        raise ValidationError(field, data, "must be a list")
    configs = [MeterConfig.from_dict(d, "%s[%d]" % (field, i)) for i, d in enumerate(data)]
    ids: set[str] = set()
    slots: set[tuple] = set()
    for i, cfg in enumerate(configs):
        if cfg.id in ids:
            raise ValidationError("%s[%d].id" % (field, i), cfg.id, "is used by another meter")
        ids.add(cfg.id)
        slot = cfg.link_key() + (cfg.device_id,)
        if slot in slots:
            raise ValidationError("%s[%d].device_id" % (field, i), cfg.device_id,
                                  "another meter on the same bus/gateway has this device id")
        slots.add(slot)
    return configs


def _int(data, key, lo, hi, default, f):
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f(key), value, "must be a whole number")
    if not lo <= value <= hi:
        raise ValidationError(f(key), value, "must be between %d and %d" % (lo, hi))
    return value


MIN_POLL_S = 0.25


def _poll_interval(data, f):
    """Down to 250 ms: every grid reading wakes the control step, and a Modbus TCP meter
    answers in about a millisecond. Faster polls would only load the meter and the
    gateway (an RS-485 bus has its own budget: docs/meters.md)."""
    value = data.get("interval_s", 1.0)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and 0 < value < MIN_POLL_S:
        raise ValidationError(f("interval_s"), value,
                              "must be at least %g seconds (one poll per %g s is the fastest "
                              "the control step follows)" % (MIN_POLL_S, MIN_POLL_S))
    return _seconds(data, "interval_s", MIN_POLL_S, 3600, 1.0, f)


def _seconds(data, key, lo, hi, default, f):
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f(key), value, "must be a number of seconds")
    if not lo <= value <= hi:
        raise ValidationError(f(key), value, "must be between %g and %g seconds" % (lo, hi))
    return float(value)


def _choice(data, key, allowed, default, f):
    value = data.get(key, default)
    if isinstance(value, bool) or value not in allowed:
        raise ValidationError(f(key), value, "must be one of %s" % ", ".join(str(a) for a in allowed))
    return value
