"""The meter node's configuration file (``node_config.json`` on the board).

`edge flash` writes it (host_tools/node_flash.py builds it from the board file,
the meter model files and the command line); the node checks it again when it
starts, because a file on a board can be edited by hand. Everything is checked
before anything starts, and an error names the field:
``meters[0].blocks[1]: must be [address, count] with count 1..125 (got [0, 300])``.

Shape:
    {"node_id": "garage-1",
     "wifi": {"ssid": "...", "password": "..."} or null (a wired or pre-configured board),
     "broker": {"host": "192.168.1.10", "port": 1883, "user": "garage-1", "password": "...",
                "keepalive_s": 30},
     "uart": {"id": 2, "tx": 17, "rx": 16, "de": 4 or null, "baudrate": 9600,
              "parity": "N", "stopbits": 1},
     "interval_ms": 1000, "timeout_ms": 500, "retries": 1, "watchdog_ms": 8000,
     "led": 2 or null,
     "meters": [{"unit": 1, "model": "eastron_sdm630", "fc": 4,
                 "blocks": [[0, 18], [52, 2], [72, 4]]}]}

``blocks`` is the compact form of the meter model: the read plan the gateway
would use itself (edge/meters/model.py ``read_blocks``), worked out at flash time
so that the board holds no model files. A SunSpec meter also has
``"sunspec": {"bases": [40000, 0, 50000], "ids": [201, 202, 203, 204], "length": 105}``:
the node finds the model's address on the device, and ``blocks`` count from it.
"""

from edge.core.errors import ValidationError

BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
_KEYS = ("node_id", "wifi", "broker", "uart", "interval_ms", "timeout_ms", "retries",
         "watchdog_ms", "led", "meters")
_BROKER_KEYS = ("host", "port", "user", "password", "keepalive_s")
_UART_KEYS = ("id", "tx", "rx", "de", "baudrate", "parity", "stopbits")
_METER_KEYS = ("unit", "model", "fc", "blocks", "sunspec")
MAX_METERS = 8


_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_"


def valid_node_id(value):
    """Node ids are MQTT user names and topic levels: lower-case letters, digits, '-'
    and '_' only (no '.', which the gateway's own account name has; no '/', '+', '#')."""
    if not isinstance(value, str) or not 1 <= len(value) <= 32:
        return False
    for c in value:
        if c not in _ID_CHARS:
            return False
    return True


def _keys(d, field, known):
    if not isinstance(d, dict):
        raise ValidationError(field, d, "must be an object")
    for key in d:
        if key not in known:
            raise ValidationError(field + "." + str(key) if field else str(key), d[key],
                                  "unknown setting; known: " + ", ".join(known))
    return d


def _int(d, key, field, lo, hi, default=None):
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValidationError(field, value, "must be a whole number from %d to %d" % (lo, hi))
    return value


def _text(d, key, field, optional=False):
    value = d.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ValidationError(field, value, "must be a non-empty text")
    return value


def _pin(d, key, field):
    value = d.get(key)
    if value is None:
        return None
    return _int(d, key, field, 0, 99)


def parse(d):
    """The validated configuration as a plain dict with every default filled in."""
    _keys(d, "", _KEYS)
    node_id = d.get("node_id")
    if not valid_node_id(node_id):
        raise ValidationError("node_id", node_id,
                              "must be 1 to 32 lower-case letters, digits, '-' or '_'")
    cfg = {"node_id": node_id}
    wifi = d.get("wifi")
    if wifi is not None:
        _keys(wifi, "wifi", ("ssid", "password"))
        wifi = {"ssid": _text(wifi, "ssid", "wifi.ssid"),
                "password": _text(wifi, "password", "wifi.password", optional=True)}
    cfg["wifi"] = wifi
    b = _keys(d.get("broker"), "broker", _BROKER_KEYS)
    cfg["broker"] = {"host": _text(b, "host", "broker.host"),
                     "port": _int(b, "port", "broker.port", 1, 65535, 1883),
                     "user": _text(b, "user", "broker.user", optional=True),
                     "password": _text(b, "password", "broker.password", optional=True),
                     "keepalive_s": _int(b, "keepalive_s", "broker.keepalive_s", 5, 3600, 30)}
    if cfg["broker"]["user"] is not None and cfg["broker"]["user"] != node_id:
        # The broker's ACL lets an account write only below its own name.
        raise ValidationError("broker.user", cfg["broker"]["user"], "must be the node id " + node_id)
    u = _keys(d.get("uart"), "uart", _UART_KEYS)
    parity = u.get("parity", "N")
    if parity not in ("N", "E", "O"):
        raise ValidationError("uart.parity", parity, "must be N, E or O")
    baud = u.get("baudrate", 9600)
    if baud not in BAUDRATES or isinstance(baud, bool):
        raise ValidationError("uart.baudrate", baud, "must be one of " + ", ".join(str(b) for b in BAUDRATES))
    cfg["uart"] = {"id": _int(u, "id", "uart.id", 0, 9), "tx": _pin(u, "tx", "uart.tx"),
                   "rx": _pin(u, "rx", "uart.rx"), "de": _pin(u, "de", "uart.de"),
                   "baudrate": baud, "parity": parity,
                   "stopbits": _int(u, "stopbits", "uart.stopbits", 1, 2, 1)}
    cfg["interval_ms"] = _int(d, "interval_ms", "interval_ms", 100, 3600000, 1000)
    cfg["timeout_ms"] = _int(d, "timeout_ms", "timeout_ms", 20, 10000, 500)
    cfg["retries"] = _int(d, "retries", "retries", 0, 5, 1)
    cfg["watchdog_ms"] = _int(d, "watchdog_ms", "watchdog_ms", 0, 120000, 8000)
    cfg["led"] = _pin(d, "led", "led")
    meters = d.get("meters")
    if not isinstance(meters, list) or not 1 <= len(meters) <= MAX_METERS:
        raise ValidationError("meters", meters, "must list 1 to %d meters" % MAX_METERS)
    cfg["meters"] = []
    units = []
    for i, m in enumerate(meters):
        f = "meters[%d]" % i
        _keys(m, f, _METER_KEYS)
        unit = _int(m, "unit", f + ".unit", 1, 247)
        if unit in units:
            raise ValidationError(f + ".unit", unit, "another meter on this bus has this address")
        units.append(unit)
        fc = m.get("fc")
        if fc not in (3, 4) or isinstance(fc, bool):
            raise ValidationError(f + ".fc", fc, "must be 3 or 4")
        blocks = m.get("blocks")
        if not isinstance(blocks, list) or not 1 <= len(blocks) <= 16:
            raise ValidationError(f + ".blocks", blocks, "must list 1 to 16 [address, count] pairs")
        for j, blk in enumerate(blocks):
            ok = isinstance(blk, list) and len(blk) == 2 and all(
                isinstance(x, int) and not isinstance(x, bool) for x in blk)
            if not ok or not 1 <= blk[1] <= 125 or not 0 <= blk[0] or blk[0] + blk[1] > 65536:
                raise ValidationError("%s.blocks[%d]" % (f, j), blk,
                                      "must be [address, count] with count 1..125")
        cfg["meters"].append({"unit": unit, "model": _text(m, "model", f + ".model"), "fc": fc,
                              "blocks": [(blk[0], blk[1]) for blk in blocks],
                              "sunspec": _sunspec(m.get("sunspec"), f + ".sunspec")})
    return cfg


def _sunspec(d, field):
    if d is None:
        return None
    _keys(d, field, ("bases", "ids", "length"))
    out = {}
    for key, lo, hi in (("bases", 0, 65533), ("ids", 1, 65534)):
        values = d.get(key)
        if not isinstance(values, list) or not 1 <= len(values) <= 8:
            raise ValidationError(field + "." + key, values, "must list 1 to 8 numbers")
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValidationError("%s.%s[%d]" % (field, key, i), v, "must be from %d to %d" % (lo, hi))
        out[key] = list(values)
    out["length"] = _int(d, "length", field + ".length", 1, 1000)
    return out
