"""Registers read from a meter -> ``MeterReading`` in integer units.

Everything a meter sends is checked: "not available" sentinels become None,
NaN/inf and physically impossible values raise ``MeterDataError`` naming the
reading and the raw value, so one bad register never becomes a wrong current
in the allocation.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Mapping, Optional

from edge.meters import codec
from edge.meters.errors import MeterDataError, MeterProtocolError
from edge.meters.model import PHASE_FIELDS, TOTAL_FIELDS, MeterModel, Part
from edge.meters.reading import MeterReading

# Plausible bounds per reading, in the reading's own unit. A value outside is
# a broken or hostile answer, not a measurement (100 kV, 100 kA, 1 GW, 1 PWh).
LIMITS = {
    "voltage_dv": (0, 1_000_000),
    "current_da": (-1_000_000, 1_000_000),
    "phase_power_w": (-1_000_000_000, 1_000_000_000),
    "power_w": (-1_000_000_000, 1_000_000_000),
    "import_wh": (0, 10**15),
    "export_wh": (0, 10**15),
}

SUNSSF_NOT_IMPLEMENTED = 0x8000
MAX_SCALE_FACTOR = 10


class WrapTracker:
    """Unwraps counters that roll over to 0 (SunSpec acc32), per meter.

    A counter read smaller than before by more than half its range has wrapped
    (at one read per second a 32-bit Wh counter cannot move that far); a small
    step back is a meter reset or replacement and is reported as read.
    """

    def __init__(self) -> None:
        self._state: dict[str, tuple[int, int]] = {}  # key -> (last raw, wraps)

    def unwrap(self, key: str, raw: int, modulus: int, pending: dict) -> int:
        last, wraps = self._state.get(key, (raw, 0))
        if raw < last and last - raw > modulus // 2:
            wraps += 1
        pending[key] = (raw, wraps)
        return raw + wraps * modulus

    def commit(self, pending: dict) -> None:
        self._state.update(pending)


def _words(registers: Mapping[int, int], address: int, count: int) -> list[int]:
    try:
        return [registers[address + i] for i in range(count)]
    except KeyError as exc:
        raise MeterProtocolError("register %s was not read" % exc.args[0]) from None


def _part_value(model: MeterModel, part: Part, registers: Mapping[int, int], origin: int,
                field: str, wraps: Optional[WrapTracker], pending: dict) -> Optional[Decimal]:
    words = _words(registers, origin + part.address, part.count)
    if codec.raw_bits(words, model.word_order) in part.na:
        return None
    try:
        value = codec.decode(words, part.type, model.word_order)
        number = codec.as_decimal(value, part.type)
    except codec.DecodeError as exc:
        raise MeterDataError(field, [hex(w) for w in words], str(exc)) from None
    if part.wraps and wraps is not None:
        number = Decimal(wraps.unwrap("%s@%d" % (field, part.address), int(value),
                                      1 << (16 * part.count), pending))
    exponent = part.exponent
    if part.sf is not None:
        sf_raw = _words(registers, origin + model.scale_factors[part.sf], 1)[0]
        if sf_raw == SUNSSF_NOT_IMPLEMENTED:
            return None
        sf = codec.decode([sf_raw], "sunssf", "big")
        if not -MAX_SCALE_FACTOR <= sf <= MAX_SCALE_FACTOR:
            raise MeterDataError(part.sf, sf, "scale factor must be between -10 and 10")
        exponent += sf
    return number.scaleb(exponent)


def _spec_value(model, spec, registers, origin, field, wraps, pending) -> Optional[int]:
    if spec is None:
        return None
    total = Decimal(0)
    for part in spec:
        value = _part_value(model, part, registers, origin, field, wraps, pending)
        if value is None:
            return None
        total += value
    lo, hi = LIMITS[field.split("[")[0]]
    if not lo <= total <= hi:
        raise MeterDataError(field, float(total), "is outside %d..%d" % (lo, hi))
    return codec.scale_to_int(total, 0)


def decode_reading(model: MeterModel, registers: Mapping[int, int], *, meter_id: str,
                   at_s: float, origin: int = 0, wraps: Optional[WrapTracker] = None,
                   missing: frozenset[str] = frozenset()) -> MeterReading:
    """Decode the registers the model names; raises MeterDataError on bad values.
    Totals named in ``missing`` (registers this meter refuses) are None."""
    pending: dict = {}
    phases = {}
    for key in PHASE_FIELDS:
        phases[key] = tuple(
            _spec_value(model, spec, registers, origin, "%s[%d]" % (key, i), wraps, pending)
            for i, spec in enumerate(model.phases[key]))
    # Some meters sign the current with the direction of flow. A breaker carries
    # the magnitude either way; the direction stays in the sign of the power.
    phases["current_da"] = tuple(None if v is None else abs(v) for v in phases["current_da"])
    totals = {key: None if key in missing else
              _spec_value(model, model.totals[key], registers, origin, key, wraps, pending)
              for key in TOTAL_FIELDS}
    if totals["power_w"] is None and None not in phases["phase_power_w"]:
        totals["power_w"] = sum(phases["phase_power_w"])
    if phases["current_da"][0] is None:
        raise MeterDataError("current_da[0]", None, "the meter reports no current on L1")
    if wraps is not None:
        wraps.commit(pending)
    return MeterReading(meter_id=meter_id, model=model.name, at_s=at_s,
                        current_da=phases["current_da"], voltage_dv=phases["voltage_dv"],
                        phase_power_w=phases["phase_power_w"], power_w=totals["power_w"],
                        import_wh=totals["import_wh"], export_wh=totals["export_wh"])
