"""The polling service: isolation, staleness, logging per incident, transports."""

import asyncio
import copy
import logging

from edge.meters import MeterConfig, MeterPoller
from edge.meters.errors import MeterTimeout
from edge.meters.model import MeterModel, load_model
from meter_helpers import FakeClock, free_port, tcp_config

POLLER_LOG = "edge.meters.poller"


async def test_one_broken_meter_never_stops_the_others(sim, poller):
    good = await sim("eastron_sdm630", values={"current_a": [16, 0, 0]})
    mute = await sim("abb_b23")
    mute.set_fault("silent")
    configs = [
        tcp_config("eastron_sdm630", good.port, "grid", interval_s=0.25),
        tcp_config("abb_b23", mute.port, "mute", interval_s=0.25, timeout_s=0.2),
        tcp_config("janitza_umg604", free_port(), "dead", interval_s=0.25),
    ]
    p = poller(configs)
    seen = []
    p.subscribe(lambda reading: seen.append(reading.meter_id))
    await p.start()

    async def broken_twice_and_grid_flowing():
        while (p.status("mute")["consecutive_failures"] < 2 or seen.count("grid") < 5
               or p.status("dead")["consecutive_failures"] < 2):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(broken_twice_and_grid_flowing(), 20)
    await p.stop()
    assert set(seen) == {"grid"}
    assert p.latest("grid").current_da == (160, 0, 0)
    assert p.latest("mute") is None and p.latest("dead") is None
    assert "no answer" in p.status("mute")["last_error"]
    assert "cannot connect" in p.status("dead")["last_error"]


async def test_unexpected_exception_in_one_meter_is_contained(sim, poller):
    good = await sim("eastron_sdm72dm", values={"current_a": [1, 2, 3]})

    class BuggyLink:  # stands in for a library bug, which no real server can provoke
        async def read(self, *args):
            raise KeyError("library bug")

        def close(self):
            pass

    def links(cfg):
        from edge.meters.poller import default_link_factory
        return BuggyLink() if cfg.id == "buggy" else default_link_factory(cfg)

    p = poller([tcp_config("eastron_sdm72dm", good.port, "ok"),
                tcp_config("eastron_sdm630", free_port(), "buggy")], link_factory=links)
    assert await p.poll_once("buggy") is None
    assert p.status("buggy")["last_error"] == "KeyError: 'library bug'"
    assert (await p.poll_once("ok")).current_da == (10, 20, 30)


async def test_stale_judged_from_the_time_of_the_last_good_read(sim, poller):
    meter = await sim("carlo_gavazzi_em24", values={"current_a": [8, 8, 8]})
    clock = FakeClock(1000.0)
    p = poller([tcp_config("carlo_gavazzi_em24", meter.port, stale_after_s=5)], clock=clock)
    assert p.is_stale("m1")
    reading = await p.poll_once("m1")
    assert reading.at_s == 1000.0 and not p.is_stale("m1")
    meter.set_fault("exception")
    clock.t = 1004.0
    assert await p.poll_once("m1") is None
    assert not p.is_stale("m1")  # 4 s old: still usable
    clock.t = 1006.0
    assert await p.poll_once("m1") is None
    assert p.is_stale("m1") and p.status("m1")["stale"]
    assert p.latest("m1") is reading  # the last good reading stays available with its age
    assert p.status("m1")["failing_since_s"] == 1004.0
    meter.set_fault(None)
    clock.t = 1007.0
    assert (await p.poll_once("m1")).at_s == 1007.0 and not p.is_stale("m1")


async def test_errors_are_logged_once_per_incident(sim, poller, caplog):
    meter = await sim("eastron_sdm630", values={"current_a": [1, 1, 1]})
    p = poller([tcp_config("eastron_sdm630", meter.port, timeout_s=0.1)])
    caplog.set_level(logging.DEBUG, logger=POLLER_LOG)

    def records(level):
        return [r for r in caplog.records if r.name == POLLER_LOG and r.levelno == level]

    meter.set_fault("exception")
    for _ in range(4):
        assert await p.poll_once("m1") is None
    assert len(records(logging.WARNING)) == 1
    assert "exception 4" in records(logging.WARNING)[0].getMessage()
    meter.set_fault("silent")  # same incident, different failure: one INFO, not a warning
    for _ in range(2):
        await p.poll_once("m1")
    meter.set_fault(None)
    await p.poll_once("m1")
    await p.poll_once("m1")
    infos = [r.getMessage() for r in records(logging.INFO)]
    assert len(records(logging.WARNING)) == 1
    assert sum("still failing" in m for m in infos) == 1
    assert sum("answering again after 6 failed polls" in m for m in infos) == 1
    meter.set_fault("exception")  # a new incident warns again
    await p.poll_once("m1")
    assert len(records(logging.WARNING)) == 2
    # pymodbus's own per-request errors are silenced; we report per incident
    assert not [r for r in caplog.records if r.name.startswith("pymodbus") and r.levelno >= logging.ERROR]


async def test_retries_are_spent_before_a_poll_fails():
    attempts = []

    class FlakyLink:
        async def read(self, fc, address, count, device_id):
            attempts.append(address)
            if len(attempts) < 3:
                raise MeterTimeout("no answer")
            return [0] * count

        def close(self):
            pass

    cfg = MeterConfig.from_dict({"id": "m", "model": "eastron_sdm630", "host": "h",
                                 "retries": 2})
    p = MeterPoller([cfg], link_factory=lambda c: FlakyLink())
    reading = await p.poll_once("m")
    assert reading is not None and attempts[:3] == [0, 0, 0]


async def test_serial_rtu_client_through_pyserial_url(sim, poller):
    # No serial hardware here: the real AsyncModbusSerialClient + RTU framer +
    # pyserial run over pyserial's socket:// URL to an RTU-framed server.
    meter = await sim("abb_b23", framer="rtu", device_id=7,
                      values={"current_a": [12.5, 0, 3.33], "import_wh": 1000})
    cfg = MeterConfig.from_dict({"id": "bus", "model": "abb_b23", "transport": "rtu",
                                 "serial_port": "socket://127.0.0.1:%d" % meter.port,
                                 "device_id": 7, "baudrate": 19200, "parity": "E",
                                 "timeout_s": 0.3, "retries": 0})
    p = poller([cfg])
    reading = await p.poll_once("bus")
    assert reading is not None, p.status("bus")["last_error"]
    assert reading.current_da == (125, 0, 33) and reading.import_wh == 1000
    meter.set_fault("silent")
    assert await p.poll_once("bus") is None
    assert p.status("bus")["last_error"].startswith("serial socket://127.0.0.1:%d device 7" % meter.port)
    meter.set_fault(None)
    assert await p.poll_once("bus") is not None


async def test_meters_on_one_gateway_share_one_connection(sim):
    meter = await sim("eastron_sdm630")
    a = tcp_config("eastron_sdm630", meter.port, "a", transport="rtu_over_tcp", device_id=1)
    b = tcp_config("eastron_sdm630", meter.port, "b", transport="rtu_over_tcp", device_id=2)
    made = []
    p = MeterPoller([a, b], link_factory=lambda c: made.append(c.id) or object())
    assert made == ["a"] and p.meter_ids() == ["a", "b"]


async def test_failing_subscriber_is_logged_once_and_readings_continue(sim, poller, caplog):
    meter = await sim("eastron_sdm630", values={"current_a": [3, 3, 3]})
    p = poller([tcp_config("eastron_sdm630", meter.port)])
    good = []

    def broken(reading):
        raise ValueError("subscriber bug")

    p.subscribe(broken)
    p.subscribe(good.append)
    caplog.set_level(logging.DEBUG, logger=POLLER_LOG)
    for _ in range(3):
        assert await p.poll_once("m1") is not None
    assert len(good) == 3
    errors = [r for r in caplog.records if r.name == POLLER_LOG and r.levelno == logging.ERROR]
    assert len(errors) == 1 and "logged once" in errors[0].getMessage()


async def test_two_meters_on_one_rtu_gateway(poller):
    from host_tools.sim_meter import SimBus, SimMeter
    grid = SimMeter("eastron_sdm630", device_id=1, values={"current_a": [16, 16, 16]})
    sub = SimMeter("carlo_gavazzi_em24", device_id=2, values={"current_a": [4, 0, 0]})
    bus = SimBus([grid, sub])
    port = await bus.start()
    try:
        p = poller([tcp_config("eastron_sdm630", port, "grid", transport="rtu_over_tcp", device_id=1),
                    tcp_config("carlo_gavazzi_em24", port, "sub", transport="rtu_over_tcp", device_id=2,
                               timeout_s=0.2)])
        assert (await p.poll_once("grid")).current_da == (160, 160, 160)
        assert (await p.poll_once("sub")).current_da == (40, 0, 0)
        sub.set_fault("exception", exception_code=2)
        assert await p.poll_once("sub") is None
        assert (await p.poll_once("grid")).current_da == (160, 160, 160)
        # A device that answers too late: its late answer (device 2) must not be
        # taken for the next request's answer (device 1). RTU has no transaction
        # id, only the device address tells them apart.
        sub.set_fault("slow", delay_s=0.3)
        assert await p.poll_once("sub") is None
        grid.set_values(current_a=[20, 20, 20])
        reading = await p.poll_once("grid")
        assert reading is not None and reading.current_da == (200, 200, 200)
        sub.set_fault(None)
        await asyncio.sleep(0.4)  # let the late answer drain before the next request
        assert (await p.poll_once("sub")).current_da == (40, 0, 0)
    finally:
        await bus.stop()


async def test_concurrent_polls_on_a_shared_bus_with_different_function_codes(poller):
    from host_tools.sim_meter import SimBus, SimMeter
    fc4 = SimMeter("eastron_sdm630", device_id=1, values={"current_a": [16, 16, 16]})
    fc3 = SimMeter("abb_b23", device_id=2, values={"current_a": [4, 5, 6]})
    bus = SimBus([fc4, fc3])
    port = await bus.start()
    try:
        p = poller([tcp_config("eastron_sdm630", port, "a", transport="rtu_over_tcp", device_id=1),
                    tcp_config("abb_b23", port, "b", transport="rtu_over_tcp", device_id=2)])
        for _ in range(10):
            a, b = await asyncio.gather(p.poll_once("a"), p.poll_once("b"))
            assert a is not None, p.status("a")["last_error"]
            assert b is not None, p.status("b")["last_error"]
            assert a.current_da == (160, 160, 160) and b.current_da == (40, 50, 60)
    finally:
        await bus.stop()


def _without_export(name):
    data = copy.deepcopy(load_model(name).raw)
    data["fields"]["export_wh"] = None
    return MeterModel.from_dict(data, name)


async def test_a_meter_without_export_registers_is_read_without_them(sim, poller, caplog):
    # A model variant that lacks the export counter answers "illegal data address"
    # for it: the currents still count, the counter is None, and that is said once.
    meter = await sim(_without_export("carlo_gavazzi_em24"), values={"current_a": [12.5, 3.0, 0.0]})
    p = poller([tcp_config("carlo_gavazzi_em24", meter.port)])
    with caplog.at_level(logging.WARNING, logger="edge.meters.poller"):
        readings = [await p.poll_once("m1") for _ in range(3)]
    assert all(r is not None for r in readings), p.status("m1")["last_error"]
    assert readings[-1].current_da == (125, 30, 0)
    assert readings[-1].export_wh is None and readings[-1].import_wh is not None
    assert p.status("m1")["not_read"] == ["export_wh"] and p.status("m1")["ok"]
    refusals = [r for r in caplog.records if "refuses registers 78..79 (export_wh)" in r.getMessage()]
    assert len(refusals) == 1


async def test_only_missing_energy_counters_are_skipped(sim, poller):
    meter = await sim("carlo_gavazzi_em24", values={"current_a": [12.5, 3.0, 0.0]})
    p = poller([tcp_config("carlo_gavazzi_em24", meter.port)])
    # Currents refused: no reading at all (the allocation must not see a guess).
    meter.set_fault("exception", exception_code=2, address=0)
    assert await p.poll_once("m1") is None
    assert p.status("m1")["not_read"] == []
    # The export counter failing for another reason (device busy) is a failed poll too.
    meter.set_fault("exception", exception_code=6, address=78)
    assert await p.poll_once("m1") is None
    meter.set_fault(None)
    r = await p.poll_once("m1")
    assert r is not None and r.export_wh is not None and p.status("m1")["not_read"] == []
