"""The grid meter disappears mid-session: the edge falls back to the safe budget,
and recovers when the meter answers again. Real Modbus TCP, real OCPP."""
import pytest

from edge import config
from edge.service import EdgeService
from host_tools.sim_meter import SimMeter
from host_tools.wallbox_sim.fleet import Fleet
from host_tools.wallbox_sim.model import ConnectorSpec, StationSpec

PASSWORD = "failsafe-test-password"


def site(meter_port: int, store: str) -> dict:
    return {
        # No cloud and no lists: the site's offline policy lets any token charge.
        "site": {"site_id": "fs", "timezone": "UTC0", "offline_unknown_tokens": "accept",
                 "grid": {"max_current_a": 40, "safety_margin_a": 1},
                 "charging_groups": [{"id": "g", "name": "G", "stations": [
                     {"id": "CP1", "connectors": [{"id": 1, "phases": 3, "wiring": "L1L2L3",
                                                   "min_current_a": 6, "max_current_a": 16}]}]}]},
        # Fail-safe assumes 30 A of building load: 40 - 1 - 30 = 9 A left for the car.
        "load_management": {"meter_max_age_s": 2, "failsafe_non_ev_a": 30, "raise_holdoff_s": 1},
        "meters": [{"id": "grid", "model": "eastron_sdm630", "host": "127.0.0.1", "port": meter_port,
                    "interval_s": 0.5, "timeout_s": 0.3, "retries": 0, "stale_after_s": 2}],
        "ocpp": {"host": "127.0.0.1", "port": 0, "stations": {"CP1": {"password": PASSWORD}}},
        "store": {"path": store},
        "control": {"interval_s": 0.5},
    }


@pytest.fixture
async def meter():
    m = SimMeter("eastron_sdm630", values={"current_a": [5.0, 5.0, 5.0], "voltage_v": [230.0] * 3})
    await m.start()
    yield m
    await m.stop()


async def test_meter_loss_goes_failsafe_and_recovers(meter, tmp_path, until):
    cfg = config.from_dict(site(meter.port, str(tmp_path / "e.db")))
    svc = EdgeService(cfg)
    await svc.start()
    fleet = Fleet("ws://127.0.0.1:%d" % svc.ocpp_port,
                  [StationSpec(id="CP1", version="2.0.1", password=PASSWORD,
                               connectors=[ConnectorSpec(3, 16)], response_delay_s=0.1)])
    key = ("CP1", 1)
    try:
        await fleet.start()
        await fleet.wait_connected()
        assert await until(lambda: svc.last is not None and svc.last.status["mode"] == "normal")
        assert await fleet.plug_in("CP1", 1, "ANY-TOKEN", 50000, 16)
        assert await until(lambda: svc.last.limits.get(key, (0,))[0] == 160), svc.last.status

        await meter.stop()
        assert await until(lambda: svc.last.status["mode"] == "failsafe", 15), svc.last.status
        assert svc.last.status["reason"] in ("meter_stale", "meter_missing")
        assert svc.last.limits[key][0] == 90
        assert await until(lambda: fleet.connector("CP1", 1).limit_a == 9.0)

        await meter.start()
        assert await until(lambda: svc.last.status["mode"] == "normal", 15), svc.last.status
        assert await until(lambda: svc.last.limits.get(key, (0,))[0] == 160, 20), svc.last.status
    finally:
        await fleet.stop()
        await svc.stop()
