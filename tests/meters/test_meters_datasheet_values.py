"""Each model against a real pymodbus server serving hand-written registers.

The raw words below are written at the addresses printed in the manufacturers'
documents and computed by hand (or with ``struct`` for IEEE floats), not with
the code under test; the expected readings are what those documents imply.
"""

import struct

import pytest

from meter_helpers import tcp_config


def f32(value):
    return list(struct.unpack(">HH", struct.pack(">f", value)))


def f64(value):
    return list(struct.unpack(">HHHH", struct.pack(">d", value)))


async def read(sim, poller, model, registers, **sim_kw):
    meter = await sim(model, **sim_kw)
    for address, words in registers.items():
        meter.set_registers(address, words)
    p = poller([tcp_config(model, meter.port)])
    reading = await p.poll_once("m1")
    assert reading is not None, p.status("m1")["last_error"]
    return reading


@pytest.mark.parametrize("model", ["eastron_sdm630", "eastron_sdm72dm"])
async def test_eastron_float32_input_registers(sim, poller, model):
    r = await read(sim, poller, model, {
        0x0000: f32(230.1), 0x0002: f32(229.9), 0x0004: f32(231.0),
        0x0006: f32(0.45), 0x0008: f32(16.04), 0x000A: f32(31.96),
        0x000C: f32(-2415.5), 0x000E: f32(0.0), 0x0010: f32(1035.4),
        0x0034: f32(-1380.1),
        0x0048: f32(12345.678), 0x004A: f32(0.5),
    })
    assert r.voltage_dv == (2301, 2299, 2310)
    assert r.current_da == (5, 160, 320)
    assert r.phase_power_w == (-2416, 0, 1035)
    assert r.power_w == -1380
    assert r.import_wh == 12345678
    assert r.export_wh == 500


# The two EM24 maps share V, A and W; their energies differ. In the PFA/PFB/X table
# 0034h is a power factor (the plain EM24's kWh(+) TOT there).
@pytest.mark.parametrize("model, import_at, export_at", [
    ("carlo_gavazzi_em24", 0x0034, 0x004E),
    ("carlo_gavazzi_em24_pfx", 0x003E, 0x005C),
])
async def test_carlo_gavazzi_em24_int32_lsw_first(sim, poller, model, import_at, export_at):
    r = await read(sim, poller, model, {
        0x0000: [2301, 0], 0x0002: [2299, 0], 0x0004: [2310, 0],          # volt*10
        0x000C: [16040, 0], 0x000E: [450, 0], 0x0010: [0x86A0, 0x0001],   # ampere*1000
        0x0012: [0xA1A5, 0xFFFF], 0x0014: [0, 0], 0x0016: [10354, 0],     # watt*10
        0x0028: [0xCA17, 0xFFFF],                                         # W sum -1380.1
        import_at: [0xCD15, 0x075B],                                      # 12345678.9 kWh
        export_at: [5, 0],                                                # 0.5 kWh
    })
    assert r.voltage_dv == (2301, 2299, 2310)
    assert r.current_da == (160, 5, 1000)
    assert r.phase_power_w == (-2416, 0, 1035)
    assert r.power_w == -1380
    assert r.import_wh == 12_345_678_900
    assert r.export_wh == 500


async def test_janitza_umg604_float32_holding_registers(sim, poller):
    r = await read(sim, poller, "janitza_umg604", {
        19000: f32(230.1), 19002: f32(229.9), 19004: f32(231.0),
        19012: f32(16.04), 19014: f32(0.45), 19016: f32(0.0),
        19020: f32(-2415.5), 19022: f32(103.5), 19024: f32(0.0),
        19026: f32(-2312.0),
        19068: f32(9876543.0), 19076: f32(250.5),
    })
    assert r.voltage_dv == (2301, 2299, 2310)
    assert r.current_da == (160, 5, 0)
    assert r.phase_power_w == (-2416, 104, 0)
    assert r.power_w == -2312
    assert r.import_wh == 9876543
    assert r.export_wh == 251


async def test_abb_b23_scaled_integers_and_not_available(sim, poller):
    r = await read(sim, poller, "abb_b23", {
        0x5B00: [0, 0x08FD], 0x5B02: [0xFFFF, 0xFFFF], 0x5B04: [0, 0x0906],  # 0.1 V; L2 n/a
        0x5B0C: [0, 0x0644], 0x5B0E: [0, 45], 0x5B10: [0, 0],               # 0.01 A
        0x5B14: [0xFFFD, 0xE4E6],                                           # -1380.10 W
        0x5B16: [0xFFFC, 0x5072], 0x5B18: [0x7FFF, 0xFFFF], 0x5B1A: [0x0001, 0x9474],
        0x5000: [0, 0, 0x0012, 0xD687],                                     # 12345.67 kWh
        0x5004: [0xFFFF] * 4,                                               # n/a
    })
    assert r.voltage_dv == (2301, None, 2310)
    assert r.current_da == (160, 5, 0)
    assert r.phase_power_w == (-2416, None, 1035)
    assert r.power_w == -1380
    assert r.import_wh == 12_345_670
    assert r.export_wh is None


async def test_siemens_pac2200_float_and_double_tariffs(sim, poller):
    r = await read(sim, poller, "siemens_pac2200", {
        1: f32(230.1), 3: f32(229.9), 5: f32(231.0),
        13: f32(16.04), 15: f32(0.45), 17: f32(31.96),
        25: f32(-2415.5), 27: f32(0.0), 29: f32(1035.4), 65: f32(-1380.1),
        801: f64(1000.25), 805: f64(2000.5),     # import tariff 1 + 2
        809: f64(0.0), 813: f64(12.4),           # export tariff 1 + 2
    })
    assert r.voltage_dv == (2301, 2299, 2310)
    assert r.current_da == (160, 5, 320)
    assert r.phase_power_w == (-2416, 0, 1035)
    assert r.power_w == -1380
    assert r.import_wh == 3001
    assert r.export_wh == 12


async def test_sunspec_201_scale_factors_and_not_implemented_phases(sim, poller):
    meter = await sim("sunspec_meter", sunspec_model_id=201)
    o = meter.origin
    assert meter.registers(40000, 2) == [0x5375, 0x6E53]  # "SunS"
    assert meter.registers(o, 2) == [201, 105]
    for offset, words in {
        3: [1604], 4: [0x8000], 5: [0x8000], 6: [0xFFFE],        # A, A_SF -2
        8: [2301], 9: [0x8000], 10: [0x8000], 15: [0xFFFF],      # V, V_SF -1
        18: [0xFF76], 19: [0xFF0E], 20: [0x8000], 21: [0x8000], 22: [1],  # W, W_SF 1
        46: [0x0001, 0x0002], 38: [0, 0], 54: [3],               # TotWh, TotWh_SF 3
    }.items():
        meter.set_registers(o + offset, words)
    p = poller([tcp_config("sunspec_meter", meter.port)])
    r = await p.poll_once("m1")
    assert r is not None, p.status("m1")["last_error"]
    assert r.current_da == (160, None, None)
    assert r.voltage_dv == (2301, None, None)
    assert r.phase_power_w == (-2420, None, None)
    assert r.power_w == -1380
    assert r.import_wh == 65_538_000
    assert r.export_wh == 0


async def test_sunspec_not_implemented_scale_factor_means_no_value(sim, poller):
    meter = await sim("sunspec_meter", values={"current_a": [10, 11, 12], "power_w": 100})
    meter.set_registers(meter.origin + 22, [0x8000])  # W_SF not implemented
    p = poller([tcp_config("sunspec_meter", meter.port)])
    r = await p.poll_once("m1")
    assert r.current_da == (100, 110, 120)
    assert r.power_w is None and r.phase_power_w == (None, None, None)


async def test_sunspec_acc32_energy_rolls_over_without_going_backwards(sim, poller):
    meter = await sim("sunspec_meter", values={"current_a": [1, 1, 1]})
    p = poller([tcp_config("sunspec_meter", meter.port)])
    meter.set_registers(meter.origin + 46, [0xFFFF, 0xFFF0])
    first = await p.poll_once("m1")
    meter.set_registers(meter.origin + 46, [0x0000, 0x0010])
    second = await p.poll_once("m1")
    meter.set_registers(meter.origin + 46, [0x0000, 0x0020])
    third = await p.poll_once("m1")
    assert first.import_wh == 0xFFFFFFF0
    assert second.import_wh == (1 << 32) + 0x10
    assert third.import_wh == (1 << 32) + 0x20


async def test_int32_counter_does_not_invent_a_rollover(sim, poller):
    # EM24 energy is a signed INT32 that cannot wrap in a meter's life: a
    # negative count is garbage and must be refused, not unwrapped.
    meter = await sim("carlo_gavazzi_em24", values={"current_a": [1, 1, 1]})
    meter.set_registers(0x0034, [0xFFFF, 0xFFFF])
    p = poller([tcp_config("carlo_gavazzi_em24", meter.port)])
    assert await p.poll_once("m1") is None
    assert "import_wh" in p.status("m1")["last_error"]


async def test_signed_current_becomes_its_magnitude(sim, poller):
    # EM24 currents are INT32; a meter that signs them by direction still loads
    # the breaker with the magnitude. Direction stays in the power's sign.
    r = await read(sim, poller, "carlo_gavazzi_em24", {
        0x000C: [0xC180, 0xFFFF],      # -16.000 A (two's complement of 16000, LSW first)
        0x0012: [0xA1A5, 0xFFFF],      # -2415.5 W
    })
    assert r.current_da[0] == 160
    assert r.phase_power_w[0] == -2416
