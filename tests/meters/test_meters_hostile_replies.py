"""Wrong and hostile answers: each gives a clear error, and the meter recovers."""

import struct

import pytest

from meter_helpers import FakeClock, free_port, tcp_config

TRANSPORTS = [("socket", "tcp"), ("rtu", "rtu_over_tcp")]


def f32(value):
    return list(struct.unpack(">HH", struct.pack(">f", value)))


@pytest.mark.parametrize("framer, transport", TRANSPORTS)
@pytest.mark.parametrize("fault, expected", [
    ("exception", "exception 4 (server device failure)"),
    ("short", "asked for 18 registers, got 17"),
    ("silent", "no answer within 0.30 s"),
    ("garbage", "unusable answer (function code 0x63"),
])
async def test_bad_answers_fail_clearly_then_recover(sim, poller, framer, transport, fault, expected):
    meter = await sim("eastron_sdm630", framer=framer, values={"current_a": [10, 11, 12]})
    clock = FakeClock(500.0)
    p = poller([tcp_config("eastron_sdm630", meter.port, transport=transport, stale_after_s=5)],
               clock=clock)
    assert (await p.poll_once("m1")).current_da == (100, 110, 120)
    meter.set_fault(fault)
    clock.t = 506.0
    assert await p.poll_once("m1") is None
    status = p.status("m1")
    assert expected in status["last_error"], status["last_error"]
    assert "%s://127.0.0.1:%d" % (transport, meter.port) in status["last_error"]
    assert status["consecutive_failures"] == 1 and not status["ok"]
    assert status["stale"] and p.latest("m1").at_s == 500.0
    meter.set_fault(None)
    meter.set_values(current_a=[20, 21, 22])
    assert (await p.poll_once("m1")).current_da == (200, 210, 220)
    assert p.status("m1")["ok"]


@pytest.mark.parametrize("code, name", [(2, "illegal data address"), (6, "server device busy"),
                                        (11, "gateway target device failed to respond")])
async def test_exception_codes_are_named(sim, poller, code, name):
    meter = await sim("abb_b23")
    meter.set_fault("exception", exception_code=code)
    p = poller([tcp_config("abb_b23", meter.port)])
    assert await p.poll_once("m1") is None
    assert "exception %d (%s)" % (code, name) in p.status("m1")["last_error"]


@pytest.mark.parametrize("words, what", [
    ([0x7FC0, 0x0000], "not a finite number"),        # NaN
    ([0x7F80, 0x0000], "not a finite number"),        # +inf
    ([0xFF80, 0x0000], "not a finite number"),        # -inf
    (f32(3.0e9), "is outside"),                       # 3 GA: not a current
])
async def test_impossible_float_values_are_refused(sim, poller, words, what):
    meter = await sim("eastron_sdm630", values={"current_a": [10, 11, 12]})
    meter.set_registers(0x0008, words)  # phase 2 current
    p = poller([tcp_config("eastron_sdm630", meter.port)])
    assert await p.poll_once("m1") is None
    error = p.status("m1")["last_error"]
    assert error.startswith("current_da[1]: ") and what in error


async def test_negative_voltage_is_refused(sim, poller):
    meter = await sim("carlo_gavazzi_em24", values={"current_a": [1, 1, 1]})
    meter.set_registers(0x0002, [0xFFFF, 0xFFFF])  # -0.1 V on L2
    p = poller([tcp_config("carlo_gavazzi_em24", meter.port)])
    assert await p.poll_once("m1") is None
    assert p.status("m1")["last_error"].startswith("voltage_dv[1]: is outside")


async def test_slow_answer_is_a_timeout(sim, poller):
    meter = await sim("janitza_umg604")
    meter.set_fault("slow", delay_s=2.0)
    p = poller([tcp_config("janitza_umg604", meter.port, timeout_s=0.2)])
    assert await p.poll_once("m1") is None
    assert "no answer within 0.20 s" in p.status("m1")["last_error"]


async def test_dead_port_is_a_connect_error(poller):
    port = free_port()
    p = poller([tcp_config("eastron_sdm630", port)])
    assert await p.poll_once("m1") is None
    error = p.status("m1")["last_error"]
    assert error.startswith("tcp://127.0.0.1:%d: cannot connect" % port)
    assert p.latest("m1") is None and p.is_stale("m1")


async def test_server_gone_mid_life_then_back(sim, poller):
    meter = await sim("siemens_pac2200", values={"current_a": [5, 5, 5]})
    port = meter.port
    p = poller([tcp_config("siemens_pac2200", port)])
    assert await p.poll_once("m1") is not None
    await meter.stop()
    assert await p.poll_once("m1") is None
    assert await p.poll_once("m1") is None
    assert "connect" in p.status("m1")["last_error"]
    back = await sim("siemens_pac2200", port=port, values={"current_a": [6, 6, 6]})
    assert back.port == port
    assert (await p.poll_once("m1")).current_da == (60, 60, 60)


async def test_wrong_device_id_is_an_exception_not_a_reading(sim, poller):
    meter = await sim("eastron_sdm630", device_id=3)
    p = poller([tcp_config("eastron_sdm630", meter.port, device_id=4)])
    assert await p.poll_once("m1") is None
    assert "exception" in p.status("m1")["last_error"]


async def test_sunspec_without_marker_or_meter_model(sim, poller):
    meter = await sim("sunspec_meter")
    meter.set_registers(40000, [0, 0])
    p = poller([tcp_config("sunspec_meter", meter.port)])
    assert await p.poll_once("m1") is None
    assert "no SunSpec marker 'SunS'" in p.status("m1")["last_error"]
    meter.set_registers(40000, [0x5375, 0x6E53])
    meter.set_registers(meter.origin, [101])  # an inverter model where the meter was
    assert await p.poll_once("m1") is None
    assert "has no meter model" in p.status("m1")["last_error"]
    meter.set_registers(meter.origin, [203])
    assert await p.poll_once("m1") is not None


@pytest.mark.parametrize("framer, transport, expected", [
    ("socket", "tcp", "unusable answer (byte count 46 in a frame of length 39)"),
    # RTU frames carry no length: the framer waits for bytes that never come
    ("rtu", "rtu_over_tcp", "no answer within 0.30 s"),
])
async def test_byte_count_that_lies_about_the_frame(sim, poller, caplog, framer, transport, expected):
    meter = await sim("eastron_sdm630", framer=framer, values={"current_a": [1, 2, 3]})
    p = poller([tcp_config("eastron_sdm630", meter.port, transport=transport)])
    meter.set_fault("bad_length")
    assert await p.poll_once("m1") is None
    assert expected in p.status("m1")["last_error"]
    # asyncio must not have logged a "Fatal error" from inside pymodbus
    assert not [r for r in caplog.records if r.name == "asyncio" and r.levelno >= 40]
    meter.set_fault(None)
    assert (await p.poll_once("m1")).current_da == (10, 20, 30)


async def test_late_rtu_answer_is_not_taken_for_the_next_block(sim, poller):
    # EM24 is read in 2-register blocks (W sum @40, kWh(+) @52, kWh(-) @78): RTU
    # has no transaction id, so a late answer to one fits the next request exactly.
    meter = await sim("carlo_gavazzi_em24", framer="rtu",
                      values={"current_a": [1, 1, 1], "power_w": 1234.5, "import_wh": 500000,
                              "export_wh": 700})
    p = poller([tcp_config("carlo_gavazzi_em24", meter.port, transport="rtu_over_tcp",
                           timeout_s=0.2)])
    meter.set_fault("late", address=40)
    assert await p.poll_once("m1") is None
    assert "fc4 @40 x2: no answer" in p.status("m1")["last_error"]
    meter.set_fault(None)
    for _ in range(3):
        r = await p.poll_once("m1")
        assert r is not None, p.status("m1")["last_error"]
        assert (r.power_w, r.import_wh, r.export_wh) == (1235, 500000, 700)


async def test_missing_serial_port_is_a_connect_error(poller, tmp_path):
    from edge.meters import MeterConfig
    path = str(tmp_path / "ttyUSB9")  # no such device
    cfg = MeterConfig.from_dict({"id": "m1", "model": "eastron_sdm630", "transport": "rtu",
                                 "serial_port": path, "timeout_s": 0.2})
    p = poller([cfg])
    assert await p.poll_once("m1") is None
    assert p.status("m1")["last_error"] == (
        "serial %s: cannot connect (cannot open the port: missing, busy or no permission)" % path)
