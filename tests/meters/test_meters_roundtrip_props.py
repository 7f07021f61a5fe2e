"""Property: what the simulator encodes, the decoder reads back at the model's resolution.

The datasheet tests pin the layout; this sweeps values (negative powers, halves,
big counters) through every model's encoding, with no server in between.
"""

from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.meters import codec
from edge.meters.decoder import decode_reading
from edge.meters.model import available_models, load_model
from host_tools.sim_meter import SimMeter

MODELS = available_models()


def tenths(lo, hi):
    return st.integers(lo * 10, hi * 10).map(lambda n: Decimal(n) / 10)


def hundredths(lo, hi):
    return st.integers(lo * 100, hi * 100).map(lambda n: Decimal(n) / 100)


def expected(model, spec, value, step, sf):
    """Reading-unit integer for ``value`` given the first part's resolution."""
    part = spec[0]
    exact = value.scaleb(step)
    if not codec.is_float_type(part.type):
        # an integer register counts steps of 10**(exponent + sf) reading units
        resolution = part.exponent + (sf.get(part.sf, 0) if part.sf else 0)
        exact = exact.scaleb(-resolution).quantize(Decimal(1), rounding=ROUND_HALF_UP).scaleb(resolution)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@settings(max_examples=120, deadline=None)
@given(model_name=st.sampled_from(MODELS),
       volts=st.lists(tenths(0, 400), min_size=3, max_size=3),
       amps=st.lists(hundredths(0, 300), min_size=3, max_size=3),
       watts=st.lists(tenths(-30000, 30000), min_size=3, max_size=3),
       total=tenths(-30000, 30000),
       imported=st.integers(0, 999_999), exported=st.integers(0, 999_999))
def test_encode_then_decode(model_name, volts, amps, watts, total, imported, exported):
    model = load_model(model_name)
    sim = SimMeter(model, values={"voltage_v": volts, "current_a": amps, "phase_power_w": watts,
                                  "power_w": total, "import_wh": imported, "export_wh": exported})
    reading = decode_reading(model, sim._image, meter_id="m", at_s=0.0, origin=sim.origin)
    sf = sim._sf
    for phase in range(3):
        assert reading.voltage_dv[phase] == expected(model, model.phases["voltage_dv"][phase], volts[phase], 1, sf)
        assert reading.current_da[phase] == expected(model, model.phases["current_da"][phase], amps[phase], 1, sf)
        assert reading.phase_power_w[phase] == expected(
            model, model.phases["phase_power_w"][phase], watts[phase], 0, sf)
    assert reading.power_w == expected(model, model.totals["power_w"], total, 0, sf)
    assert reading.import_wh == expected(model, model.totals["import_wh"], Decimal(imported), 0, sf)
    assert reading.export_wh == expected(model, model.totals["export_wh"], Decimal(exported), 0, sf)
