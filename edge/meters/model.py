"""Meter models: one JSON data file per model in ``edge/meters/models``.

A model file says where each reading lives (register address, data type, word
order, unit, function code) and cites the manufacturer's document it was taken
from. ``MeterModel.from_dict`` validates a file completely before anything is
built; errors name the field path, e.g. ``fields.current_da[1].type``.

Addresses are the 0-based protocol addresses sent on the wire (Eastron's
"30001" register is address 0). SunSpec models give addresses relative to
the model's ID register, which is found on the device at run time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from edge.core.errors import ValidationError
from edge.meters import codec

MODELS_DIR = Path(__file__).with_name("models")

PHASE_FIELDS = ("voltage_dv", "current_da", "phase_power_w")
TOTAL_FIELDS = ("power_w", "import_wh", "export_wh")
# Readings the allocation can do without: a meter variant that lacks their registers
# is read without them (poller) rather than not at all.
OPTIONAL_FIELDS = frozenset({"import_wh", "export_wh"})

# Unit a register may be given in, per reading, and its power of ten relative
# to the reading's own unit (dV, dA, W, Wh).
_UNITS = {
    "voltage_dv": {"V": 1},
    "current_da": {"A": 1},
    "phase_power_w": {"W": 0, "kW": 3},
    "power_w": {"W": 0, "kW": 3},
    "import_wh": {"Wh": 0, "kWh": 3},
    "export_wh": {"Wh": 0, "kWh": 3},
}

_NAME_RE = re.compile(r"^[a-z0-9_]{1,64}$")
_TOP_KEYS = {"model", "manufacturer", "title", "source", "function_code", "word_order",
             "max_read", "max_gap", "not_available", "sunspec", "scale_factors", "fields"}
_PART_KEYS = {"address", "type", "unit", "scale_exp", "sf", "wraps", "doc"}
_WRAPPING_TYPES = ("uint16", "uint32", "uint64", "acc32")


class Part:
    """One register value contributing to a reading."""

    __slots__ = ("address", "type", "exponent", "sf", "wraps", "na")

    def __init__(self, address: int, type_name: str, exponent: int, sf: str | None,
                 wraps: bool, na: frozenset[int]):
        self.address = address
        self.type = type_name
        self.exponent = exponent  # power of ten from raw to the reading's unit, before sf
        self.sf = sf
        self.wraps = wraps
        self.na = na

    @property
    def count(self) -> int:
        return codec.registers_of(self.type)


class MeterModel:
    """A validated meter model (see ``from_dict``)."""

    def __init__(self, name: str, data: dict[str, Any], function_code: int, word_order: str,
                 max_read: int, max_gap: int, phases: tuple, totals: dict,
                 scale_factors: dict[str, int], sunspec: dict | None):
        self.name = name
        self.manufacturer = data["manufacturer"]
        self.title = data["title"]
        self.source = data["source"]
        self.function_code = function_code
        self.word_order = word_order
        self.max_read = max_read
        self.max_gap = max_gap
        self.phases = phases  # {"voltage_dv": (spec|None,)*3, ...}
        self.totals = totals  # {"power_w": spec|None, ...}
        self.scale_factors = scale_factors  # name -> address
        self.sunspec = sunspec  # None or {"base_addresses", "model_ids", "model_length"}
        self.raw = data

    def __repr__(self) -> str:
        return "MeterModel(%r)" % self.name

    def parts(self):
        for specs in self.phases.values():
            for spec in specs:
                if spec:
                    yield from spec
        for spec in self.totals.values():
            if spec:
                yield from spec

    def fields_in(self, address: int, count: int) -> set[str]:
        """The readings with a register in ``address .. address+count-1`` (model addresses)."""
        out = set()
        named = [(key, spec) for key, specs in self.phases.items() for spec in specs]
        named += list(self.totals.items())
        for key, spec in named:
            for part in spec or ():
                if part.address < address + count and address < part.address + part.count:
                    out.add(key)
        return out

    def read_blocks(self, origin: int = 0) -> list[tuple[int, int]]:
        """(address, count) requests covering every register the model uses."""
        spans = sorted({(p.address, p.count) for p in self.parts()}
                       | {(a, 1) for a in self.scale_factors.values()})
        blocks: list[list[int]] = []
        for address, count in spans:
            if blocks:
                start, end = blocks[-1]
                new_end = max(end, address + count)
                if address - end <= self.max_gap and new_end - start <= self.max_read:
                    blocks[-1][1] = new_end
                    continue
            blocks.append([address, address + count])
        return [(origin + start, end - start) for start, end in blocks]

    @classmethod
    def from_dict(cls, data: Any, name: str | None = None) -> "MeterModel":
        if not isinstance(data, dict):
            raise ValidationError("model", data, "must be an object")
        for key in data:
            if key not in _TOP_KEYS:
                raise ValidationError(str(key), data[key], "is not a model file key")
        model_name = _need_name(data.get("model"), "model")
        if name is not None and model_name != name:
            raise ValidationError("model", model_name, "must match the file name %r" % name)
        for key in ("manufacturer", "title"):
            _need_text(data.get(key), key)
        source = data.get("source")
        if not isinstance(source, dict):
            raise ValidationError("source", source, "must be an object citing the document")
        for key in ("title", "version"):
            _need_text(source.get(key), "source." + key)
        fc = data.get("function_code")
        if fc not in (3, 4) or isinstance(fc, bool):
            raise ValidationError("function_code", fc, "must be 3 (holding) or 4 (input registers)")
        word_order = data.get("word_order")
        if word_order not in codec.WORD_ORDERS:
            raise ValidationError("word_order", word_order, "must be 'big' or 'little'")
        max_read = _need_int(data.get("max_read"), "max_read", 1, 125)
        max_gap = _need_int(data.get("max_gap", 0), "max_gap", 0, 125)
        na = _parse_na(data.get("not_available", {}))
        sunspec = _parse_sunspec(data.get("sunspec"))
        scale_factors = _parse_scale_factors(data.get("scale_factors", {}), sunspec)
        fields = data.get("fields")
        if not isinstance(fields, dict):
            raise ValidationError("fields", fields, "must be an object")
        unknown = set(fields) - set(PHASE_FIELDS) - set(TOTAL_FIELDS)
        if unknown:
            raise ValidationError("fields", sorted(unknown)[0], "is not a known reading")
        phases = {}
        for key in PHASE_FIELDS:
            entries = fields.get(key)
            if not isinstance(entries, list) or len(entries) != 3:
                raise ValidationError("fields." + key, entries, "must list 3 phases (null if not measured)")
            specs = tuple(
                None if e is None else _parse_spec(e, key, "fields.%s[%d]" % (key, i), na, scale_factors)
                for i, e in enumerate(entries))
            if specs[0] is None:
                raise ValidationError("fields.%s[0]" % key, None, "phase L1 must be measured")
            phases[key] = specs
        totals = {}
        for key in TOTAL_FIELDS:
            if key not in fields:
                raise ValidationError("fields." + key, None, "is required")
            entry = fields[key]
            totals[key] = None if entry is None else _parse_spec(entry, key, "fields." + key, na, scale_factors)
        model = cls(model_name, data, fc, word_order, max_read, max_gap, phases, totals,
                    scale_factors, sunspec)
        _check_overlaps(model)
        if sunspec:
            for p in model.parts():
                if p.address < 2 or p.address + p.count > sunspec["model_length"] + 2:
                    raise ValidationError("fields", p.address, "lies outside the SunSpec model block")
            for sf_name, a in scale_factors.items():
                if not 2 <= a < sunspec["model_length"] + 2:
                    raise ValidationError("scale_factors.%s.address" % sf_name, a,
                                          "lies outside the SunSpec model block")
        return model


def _need_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValidationError(field, value, "must be lower-case letters, digits and '_'")
    return value


def _need_text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, value, "must be a non-empty text")
    return value


def _need_int(value: Any, field: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(field, value, "must be a whole number")
    if not lo <= value <= hi:
        raise ValidationError(field, value, "must be between %d and %d" % (lo, hi))
    return value


def _parse_na(value: Any) -> dict[str, frozenset[int]]:
    if not isinstance(value, dict):
        raise ValidationError("not_available", value, "must map data types to sentinel values")
    result = {}
    for type_name, patterns in value.items():
        if type_name not in codec.TYPES:
            raise ValidationError("not_available", type_name, "is not a data type")
        if not isinstance(patterns, list):
            raise ValidationError("not_available." + type_name, patterns, "must be a list")
        limit = 1 << (16 * codec.registers_of(type_name))
        for i, p in enumerate(patterns):
            _need_int(p, "not_available.%s[%d]" % (type_name, i), 0, limit - 1)
        result[type_name] = frozenset(patterns)
    return result


def _parse_sunspec(value: Any) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError("sunspec", value, "must be an object or null")
    bases = value.get("base_addresses")
    if not isinstance(bases, list) or not bases:
        raise ValidationError("sunspec.base_addresses", bases, "must be a non-empty list")
    for i, b in enumerate(bases):
        _need_int(b, "sunspec.base_addresses[%d]" % i, 0, 65533)
    ids = value.get("model_ids")
    if not isinstance(ids, list) or not ids:
        raise ValidationError("sunspec.model_ids", ids, "must be a non-empty list")
    for i, m in enumerate(ids):
        _need_int(m, "sunspec.model_ids[%d]" % i, 1, 65534)
    length = _need_int(value.get("model_length"), "sunspec.model_length", 1, 1000)
    return {"base_addresses": tuple(bases), "model_ids": frozenset(ids), "model_length": length}


def _parse_scale_factors(value: Any, sunspec: dict | None) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValidationError("scale_factors", value, "must be an object")
    result = {}
    for name, entry in value.items():
        field = "scale_factors." + str(name)
        if not isinstance(entry, dict):
            raise ValidationError(field, entry, "must be an object with an address")
        result[name] = _need_int(entry.get("address"), field + ".address", 0, 65535)
    if result and not sunspec:
        raise ValidationError("scale_factors", sorted(result)[0], "are only used by SunSpec models")
    return result


def _parse_part(entry: Any, key: str, field: str, na: dict, scale_factors: dict) -> Part:
    if not isinstance(entry, dict):
        raise ValidationError(field, entry, "must be an object")
    for name in entry:
        if name not in _PART_KEYS:
            raise ValidationError("%s.%s" % (field, name), entry[name], "is not a register setting")
    address = _need_int(entry.get("address"), field + ".address", 0, 65535)
    type_name = entry.get("type")
    if type_name not in codec.TYPES or type_name == "sunssf":
        raise ValidationError(field + ".type", type_name, "must be one of %s" % ", ".join(
            t for t in codec.TYPES if t != "sunssf"))
    if address + codec.registers_of(type_name) > 65536:
        raise ValidationError(field + ".address", address, "runs past the last register")
    unit = entry.get("unit")
    units = _UNITS[key]
    if unit not in units:
        raise ValidationError(field + ".unit", unit, "must be one of %s" % ", ".join(units))
    scale_exp = _need_int(entry.get("scale_exp", 0), field + ".scale_exp", -9, 9)
    sf = entry.get("sf")
    if sf is not None and sf not in scale_factors:
        raise ValidationError(field + ".sf", sf, "is not declared in scale_factors")
    wraps = entry.get("wraps", False)
    if wraps is not True and wraps is not False:
        raise ValidationError(field + ".wraps", wraps, "must be true or false")
    if wraps and type_name not in _WRAPPING_TYPES:
        raise ValidationError(field + ".wraps", wraps, "only unsigned counters can wrap")
    return Part(address, type_name, units[unit] + scale_exp, sf, wraps,
                na.get(type_name, frozenset()))


def _parse_spec(entry: Any, key: str, field: str, na: dict, scale_factors: dict) -> tuple[Part, ...]:
    # A reading is one register value or the sum of several (e.g. tariff 1 + tariff 2).
    if isinstance(entry, dict) and "sum" in entry:
        if len(entry) != 1:
            raise ValidationError(field, sorted(entry), "a sum has only the key 'sum'")
        parts = entry["sum"]
        if not isinstance(parts, list) or not parts:
            raise ValidationError(field + ".sum", parts, "must be a non-empty list")
        return tuple(_parse_part(p, key, "%s.sum[%d]" % (field, i), na, scale_factors)
                     for i, p in enumerate(parts))
    return (_parse_part(entry, key, field, na, scale_factors),)


def _check_overlaps(model: MeterModel) -> None:
    used: dict[int, int] = {}
    for p in model.parts():
        for a in range(p.address, p.address + p.count):
            if a in used and used[a] != p.address:
                raise ValidationError("fields", p.address, "overlaps the value at address %d" % used[a])
            used[a] = p.address
    for name, a in model.scale_factors.items():
        if a in used:
            raise ValidationError("scale_factors." + name, a, "overlaps a measured value")


_cache: dict[str, MeterModel] = {}


def available_models() -> list[str]:
    return sorted(p.stem for p in MODELS_DIR.glob("*.json"))


def load_model(name: str) -> MeterModel:
    """The model of that name from ``edge/meters/models/<name>.json``."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValidationError("model", name, "must be lower-case letters, digits and '_'")
    if name in _cache:
        return _cache[name]
    path = MODELS_DIR / (name + ".json")
    if not path.is_file():
        raise ValidationError("model", name, "is not a known meter model (known: %s)" % ", ".join(available_models()))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError("model", name, "cannot be read: %s" % exc) from exc
    model = MeterModel.from_dict(data, name)
    _cache[name] = model
    return model
