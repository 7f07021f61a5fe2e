"""Decoder rules that no shipped model exercises on the wire."""

import copy
import json

import pytest

from edge.meters.decoder import WrapTracker, decode_reading
from edge.meters.errors import MeterDataError, MeterProtocolError
from edge.meters.model import MODELS_DIR, MeterModel, load_model


def sunspec_with_uint16_voltage():
    data = json.loads((MODELS_DIR / "sunspec_meter.json").read_text())
    data["model"] = "sunspec_uint16_test"
    for part in data["fields"]["voltage_dv"]:
        part["type"] = "uint16"
    return MeterModel.from_dict(data)


def registers_for(model, origin, values):
    regs = {a: 0 for start, n in model.read_blocks(origin) for a in range(start, start + n)}
    for offset, word in values.items():
        regs[origin + offset] = word
    return regs


def test_sunspec_uint16_not_implemented_is_0xffff():
    model = sunspec_with_uint16_voltage()
    regs = registers_for(model, 100, {3: 50, 8: 2301, 9: 0xFFFF, 10: 0x8000, 15: 0xFFFF})
    r = decode_reading(model, regs, meter_id="m", at_s=1.0, origin=100)
    # uint16 0xFFFF = not implemented; 0x8000 is a real uint16 value (3276.8 V would be
    # out of range, so use the decoded number only to show it is not treated as n/a)
    assert r.voltage_dv[0] == 2301 and r.voltage_dv[1] is None
    assert r.voltage_dv[2] == 32768


def test_scale_factor_out_of_range_is_refused():
    model = load_model("sunspec_meter")
    regs = registers_for(model, 0, {3: 100, 6: 11})  # A_SF = 11
    with pytest.raises(MeterDataError) as err:
        decode_reading(model, regs, meter_id="m", at_s=1.0)
    assert err.value.field == "A_SF"


def test_missing_register_is_a_protocol_error():
    model = load_model("eastron_sdm630")
    with pytest.raises(MeterProtocolError):
        decode_reading(model, {0: 0}, meter_id="m", at_s=1.0)


def test_wrap_tracker_counts_wraps_and_ignores_small_steps_back():
    w = WrapTracker()
    pending = {}
    modulus = 1 << 32
    assert w.unwrap("e", modulus - 5, modulus, pending) == modulus - 5
    w.commit(pending)
    assert w.unwrap("e", 3, modulus, pending) == modulus + 3
    w.commit(pending)
    assert w.unwrap("e", 1, modulus, pending) == modulus + 1  # a small step back: reported as read
    w.commit(pending)


def test_failed_decode_does_not_advance_the_wrap_state():
    model = load_model("sunspec_meter")
    w = WrapTracker()
    base = {3: 100, 46: 0xFFFF, 47: 0xFFF0}
    decode_reading(model, registers_for(model, 0, base), meter_id="m", at_s=1.0, wraps=w)
    # Refused after the energy was decoded: L1 current "not implemented".
    bad = {**base, 46: 0, 47: 5, 3: 0x8000}
    with pytest.raises(MeterDataError) as err:
        decode_reading(model, registers_for(model, 0, bad), meter_id="m", at_s=2.0, wraps=w)
    assert err.value.field == "current_da[0]"
    # Had the refused read counted as a wrap, this would come out 2^32 too high.
    good = {**base, 46: 0xFFFF, 47: 0xFFF8}
    r = decode_reading(model, registers_for(model, 0, good), meter_id="m", at_s=3.0, wraps=w)
    assert r.import_wh == 0xFFFFFFF8
