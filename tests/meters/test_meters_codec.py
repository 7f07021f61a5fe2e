import math
import struct
from decimal import Decimal

import pytest

from edge.meters import codec


def test_float32_big_word_order_matches_ieee754():
    words = codec.encode(230.1, "float32", "big")
    assert words == list(struct.unpack(">HH", struct.pack(">f", 230.1)))
    assert codec.decode(words, "float32", "big") == struct.unpack(">f", struct.pack(">f", 230.1))[0]


def test_little_word_order_puts_low_word_first():
    # Carlo Gavazzi INT32: 123456789 = 0x075BCD15 sent as 0xCD15, 0x075B
    assert codec.decode([0xCD15, 0x075B], "int32", "little") == 123456789
    assert codec.encode(123456789, "int32", "little") == [0xCD15, 0x075B]
    assert codec.decode([0xCD15, 0x075B], "int32", "big") == 0xCD15075B - (1 << 32)


def test_signed_and_unsigned_64_bit():
    assert codec.decode([0xFFFF] * 4, "int64", "big") == -1
    assert codec.decode([0xFFFF] * 4, "uint64", "big") == (1 << 64) - 1
    assert codec.decode([0, 0, 0x0012, 0xD687], "uint64", "big") == 1234567


def test_wrong_register_count_or_word_is_refused():
    with pytest.raises(codec.DecodeError):
        codec.decode([1], "float32", "big")
    with pytest.raises(codec.DecodeError):
        codec.decode([0x10000, 0], "uint32", "big")


def test_float32_decimal_recovers_the_meter_value():
    f32 = struct.unpack(">f", struct.pack(">f", 0.45))[0]
    assert f32 != 0.45  # the float32 is 0.449999988...
    assert codec.float32_decimal(f32) == Decimal("0.45")
    assert codec.scale_to_int(codec.as_decimal(f32, "float32"), 1) == 5


def test_rounding_is_half_away_from_zero():
    assert codec.scale_to_int(Decimal("2.25"), 1) == 23
    assert codec.scale_to_int(Decimal("-2.25"), 1) == -23
    assert codec.scale_to_int(Decimal("-2415.5"), 0) == -2416
    assert codec.scale_to_int(Decimal("1035.4"), 0) == 1035


def test_nan_and_inf_are_not_numbers():
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(codec.DecodeError):
            codec.as_decimal(bad, "float32")
