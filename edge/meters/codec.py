"""Register words <-> numbers, and exact conversion to integer units.

Modbus registers are 16-bit words, always sent high byte first. Values wider
than one word span consecutive registers; meters disagree on which word comes
first ("big": most significant word first, as Eastron, Janitza, ABB, Siemens
and SunSpec do; "little": least significant word first, as Carlo Gavazzi does).

Conversions to integer units go through ``Decimal`` so that a meter's 0.45 A
becomes 5 dA (round half away from zero) instead of 4 because the float32
nearest to 0.45 is 0.4499999881.
"""

from __future__ import annotations

import math
import struct
from decimal import ROUND_HALF_UP, Decimal

# name -> (registers, struct code, is_float)
TYPES: dict[str, tuple[int, str, bool]] = {
    "int16": (1, "h", False),
    "uint16": (1, "H", False),
    "int32": (2, "i", False),
    "uint32": (2, "I", False),
    "int64": (4, "q", False),
    "uint64": (4, "Q", False),
    "float32": (2, "f", True),
    "float64": (4, "d", True),
    # SunSpec accumulator: an unsigned 32-bit counter that wraps to 0.
    "acc32": (2, "I", False),
    # SunSpec scale factor: signed power of ten applied to other points.
    "sunssf": (1, "h", False),
}

WORD_ORDERS = ("big", "little")


class DecodeError(ValueError):
    """The words cannot be a value of that type (wrong count, not a word)."""


def registers_of(type_name: str) -> int:
    return TYPES[type_name][0]


def _ordered(words: list[int] | tuple[int, ...], word_order: str) -> list[int]:
    return list(words) if word_order == "big" else list(reversed(words))


def raw_bits(words: list[int] | tuple[int, ...], word_order: str) -> int:
    """The words as one unsigned integer, most significant word first."""
    value = 0
    for word in _ordered(words, word_order):
        value = (value << 16) | word
    return value


def decode(words: list[int] | tuple[int, ...], type_name: str, word_order: str) -> int | float:
    count, code, _ = TYPES[type_name]
    if len(words) != count:
        raise DecodeError("%s needs %d registers, got %d" % (type_name, count, len(words)))
    for word in words:
        if not isinstance(word, int) or not 0 <= word <= 0xFFFF:
            raise DecodeError("register value %r is not a 16-bit word" % (word,))
    data = b"".join(w.to_bytes(2, "big") for w in _ordered(words, word_order))
    return struct.unpack(">" + code, data)[0]


def encode(value: int | float, type_name: str, word_order: str) -> list[int]:
    """The inverse of ``decode`` (used by the simulator and the tests)."""
    count, code, _ = TYPES[type_name]
    data = struct.pack(">" + code, value)
    words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, 2 * count, 2)]
    return _ordered(words, word_order)


def is_float_type(type_name: str) -> bool:
    return TYPES[type_name][2]


def float32_decimal(value: float) -> Decimal:
    """The shortest decimal that maps back to the same float32.

    A meter computes 230.1 V and stores the nearest float32; the shortest
    round-tripping decimal recovers what the meter meant.
    """
    packed = struct.pack(">f", value)
    for digits in range(1, 10):
        text = "%.*g" % (digits, value)
        if struct.pack(">f", float(text)) == packed:
            return Decimal(text)
    return Decimal(repr(value))


def as_decimal(value: int | float, type_name: str) -> Decimal:
    if isinstance(value, int):
        return Decimal(value)
    if not math.isfinite(value):
        raise DecodeError("not a finite number: %r" % (value,))
    if type_name == "float32":
        return float32_decimal(value)
    return Decimal(repr(value))


def scale_to_int(value: Decimal, exponent: int) -> int:
    """``value * 10**exponent`` rounded half away from zero."""
    scaled = value.scaleb(exponent)
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))
