"""The simulated car draws what the charging profiles allow."""
import pytest

from calls import clear_profile, profile
from central import Central
from helpers import VERSIONS, fleet_for, samples, spec, starts
from host_tools.sim_wallbox import ManualClock, iso


@pytest.mark.parametrize("version", VERSIONS)
async def test_default_profile_lowers_drawn_current_and_clearing_restores_it(version):
    clock = ManualClock()
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version)], clock)
        async with fleet:
            await fleet.wait_connected()
            await fleet.plug_in("CP1", 1, "T", need_wh=90_000, max_current_a=16)
            conn = fleet.connector("CP1", 1)
            assert conn.drawn_a == 16.0 and conn.limit_a is None
            point = await cs.point("CP1")
            res = await point.call(profile(version, 5, "TxDefaultProfile", 10))
            assert res.status == "Accepted"
            assert conn.limit_a == 10.0 and conn.drawn_a == 10.0
            await clock.advance(10)
            await cs.wait_for(lambda: samples(cs, version), "a sample")
            assert samples(cs, version)[-1][2] == [10.0, 10.0, 10.0]
            res = await point.call(clear_profile(version, 5))
            assert res.status == "Accepted"
            assert conn.limit_a is None and conn.drawn_a == 16.0
            res = await point.call(clear_profile(version, 5))
            assert res.status == "Unknown"


@pytest.mark.parametrize("version", VERSIONS)
async def test_car_follows_a_new_limit_only_after_its_response_delay(version):
    clock = ManualClock()
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, response_delay_s=8)], clock)
        async with fleet:
            await fleet.wait_connected()
            await fleet.plug_in("CP1", 1, "T", need_wh=90_000, max_current_a=16)
            conn = fleet.connector("CP1", 1)
            await clock.advance(8)
            assert conn.drawn_a == 16.0
            point = await cs.point("CP1")
            assert (await point.call(profile(version, 1, "TxDefaultProfile", 7))).status == "Accepted"
            assert conn.limit_a == 7.0 and conn.drawn_a == 16.0
            await clock.advance(7)
            assert conn.drawn_a == 16.0
            await clock.advance(1)
            assert conn.drawn_a == 7.0


@pytest.mark.parametrize("version", VERSIONS)
async def test_station_maximum_is_shared_and_tx_profile_overrides_default(version):
    clock = ManualClock()
    async with Central(tokens={"A", "B"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, connectors=2)], clock)
        async with fleet:
            await fleet.wait_connected()
            await fleet.plug_in("CP1", 1, "A", need_wh=90_000, max_current_a=16)
            await fleet.plug_in("CP1", 2, "B", need_wh=90_000, max_current_a=16)
            await cs.wait_for(lambda: len(starts(cs, version)) == 2, "two starts")
            one, two = fleet.connector("CP1", 1), fleet.connector("CP1", 2)
            await clock.advance(1)
            point = await cs.point("CP1")
            assert (await point.call(profile(version, 1, "max", 20))).status == "Accepted"
            assert (one.drawn_a, two.drawn_a) == (10.0, 10.0)
            # Stack level 0 default at 8 A on connector 1, then its TxProfile wins.
            assert (await point.call(profile(version, 2, "TxDefaultProfile", 8,
                                             connector=1))).status == "Accepted"
            assert one.drawn_a == 8.0 and two.drawn_a == 12.0
            await cs.wait_for(lambda: one.tx.server_id is not None, "tx numbered")
            res = await point.call(profile(version, 3, "TxProfile", 13, connector=1,
                                           tx_id=one.tx.server_id))
            assert res.status == "Accepted"
            assert (one.drawn_a, two.drawn_a) == (10.0, 10.0)   # 13 + 16 > 20: shared
            assert one.limit_a == 10.0


@pytest.mark.parametrize("version", VERSIONS)
async def test_limit_below_six_amps_pauses_and_power_limits_convert(version):
    clock = ManualClock()
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version)], clock)
        async with fleet:
            await fleet.wait_connected()
            await fleet.plug_in("CP1", 1, "T", need_wh=90_000, max_current_a=32)
            conn = fleet.connector("CP1", 1)
            point = await cs.point("CP1")
            await point.call(profile(version, 1, "TxDefaultProfile", 6900, unit="W"))
            assert conn.drawn_a == 10.0 and conn.drawn_phases == 3
            await point.call(profile(version, 1, "TxDefaultProfile", 4))
            assert conn.drawn_a == 0.0 and conn.state == "SuspendedEVSE"
            await point.call(profile(version, 1, "TxDefaultProfile", 12.5))
            assert conn.drawn_a == 12.5 and conn.state == "Charging"


@pytest.mark.parametrize("version", VERSIONS)
async def test_schedule_periods_take_effect_over_time(version):
    clock = ManualClock(1_700_000_000)
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, meter_interval_s=60)], clock)
        async with fleet:
            await fleet.wait_connected()
            await fleet.plug_in("CP1", 1, "T", need_wh=90_000, max_current_a=32)
            conn = fleet.connector("CP1", 1)
            point = await cs.point("CP1")
            res = await point.call(profile(version, 1, "TxDefaultProfile", 0, kind="Absolute",
                                           periods=[(0, 20), (120, 8)],
                                           start_schedule=iso(1_700_000_000)))
            assert res.status == "Accepted" and conn.drawn_a == 20.0
            await clock.advance(120, step_s=60)
            assert conn.drawn_a == 8.0


@pytest.mark.parametrize("version", VERSIONS)
async def test_bad_profiles_are_rejected_and_change_nothing(version):
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, connectors=2)])
        async with fleet:
            await fleet.wait_connected()
            await fleet.plug_in("CP1", 1, "T", need_wh=90_000, max_current_a=16)
            conn = fleet.connector("CP1", 1)
            point = await cs.point("CP1")
            # A TxProfile where no transaction runs.
            res = await point.call(profile(version, 1, "TxProfile", 8, connector=2))
            assert res.status == "Rejected"
            # Periods out of order.
            res = await point.call(profile(version, 2, "TxDefaultProfile", 0,
                                           periods=[(0, 8), (0, 10)]))
            assert res.status == "Rejected"
            # A station maximum on a connector.
            res = await point.call(profile(version, 3, "max", 8, connector=1))
            assert res.status == "Rejected"
            # An unknown connector.
            res = await point.call(profile(version, 4, "TxDefaultProfile", 8, connector=9))
            assert res.status == "Rejected"
            assert conn.drawn_a == 16.0 and len(fleet.station("CP1").profiles) == 0


@pytest.mark.parametrize("version", VERSIONS)
async def test_uncontrollable_wallbox_refuses_profiles(version):
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, accept_profiles=False)])
        async with fleet:
            await fleet.wait_connected()
            await fleet.plug_in("CP1", 1, "T", need_wh=90_000, max_current_a=16)
            point = await cs.point("CP1")
            res = await point.call(profile(version, 1, "TxDefaultProfile", 8))
            assert res.status == ("NotSupported" if version == "1.6" else "Rejected")
            assert fleet.connector("CP1", 1).drawn_a == 16.0


@pytest.mark.parametrize("version", VERSIONS)
async def test_limit_shows_what_the_profiles_allow_not_what_the_car_takes(version):
    async with Central(tokens={"A", "B"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, connectors=3)])
        async with fleet:
            await fleet.wait_connected()
            await fleet.plug_in("CP1", 1, "A", need_wh=90_000, max_current_a=16)
            await fleet.plug_in("CP1", 2, "B", need_wh=90_000, max_current_a=10)
            one, two, idle = (fleet.connector("CP1", i) for i in (1, 2, 3))
            point = await cs.point("CP1")
            await point.call(profile(version, 1, "TxDefaultProfile", 17))
            assert (one.limit_a, one.drawn_a) == (17.0, 16.0)
            # A 40 A station maximum: each connector may take the cap minus the others.
            await point.call(profile(version, 2, "max", 40))
            assert (one.limit_a, one.drawn_a) == (17.0, 16.0)
            assert (two.limit_a, two.drawn_a) == (17.0, 10.0)
            await point.call(profile(version, 2, "max", 30))
            assert (one.limit_a, one.drawn_a) == (17.0, 16.0)
            assert (two.limit_a, two.drawn_a) == (14.0, 10.0)
            assert idle.limit_a == 4.0 and idle.drawn_a == 0.0


async def test_v16_clear_by_purpose_and_stack_level():
    from ocpp.v16 import call as c16
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", "1.6")])
        async with fleet:
            await fleet.wait_connected()
            await fleet.plug_in("CP1", 1, "T", need_wh=90_000, max_current_a=16)
            conn = fleet.connector("CP1", 1)
            point = await cs.point("CP1")
            await point.call(profile("1.6", 1, "TxDefaultProfile", 10, stack=0))
            await point.call(profile("1.6", 2, "TxDefaultProfile", 8, stack=1))
            await point.call(profile("1.6", 3, "max", 12))
            assert conn.drawn_a == 8.0
            res = await point.call(c16.ClearChargingProfile(
                charging_profile_purpose="TxDefaultProfile", stack_level=1))
            assert res.status == "Accepted" and conn.drawn_a == 10.0
            res = await point.call(c16.ClearChargingProfile(
                charging_profile_purpose="TxDefaultProfile"))
            assert res.status == "Accepted" and conn.drawn_a == 12.0   # the maximum is left
            res = await point.call(c16.ClearChargingProfile(
                charging_profile_purpose="TxDefaultProfile"))
            assert res.status == "Unknown"


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_schedule_period_takes_effect_on_time_between_meter_samples(version):
    clock = ManualClock(1_700_000_000)
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, meter_interval_s=900)], clock)
        async with fleet:
            await fleet.wait_connected()
            await fleet.plug_in("CP1", 1, "T", need_wh=90_000, max_current_a=32)
            conn = fleet.connector("CP1", 1)
            point = await cs.point("CP1")
            await point.call(profile(version, 1, "TxDefaultProfile", 0, kind="Relative",
                                     periods=[(0, 20), (125, 8), (300, 14)]))
            assert conn.drawn_a == 20.0
            await clock.advance(124)
            assert conn.drawn_a == 20.0
            await clock.advance(1)
            assert conn.drawn_a == 8.0
            await clock.advance(175)
            assert conn.drawn_a == 14.0
            # 20 A for 125 s, 8 A for 175 s on three phases: energy follows the schedule.
            assert round(conn.session_wh, 3) == round((20 * 125 + 8 * 175) * 3 * 230 / 3600, 3)
