"""Offline operation: local authorization, queued transaction, late delivery."""
import pytest

from calls import send_list
from central import Central
from helpers import VERSIONS, fleet_for, samples, spec, starts, stops, until
from host_tools.sim_wallbox import ManualClock, iso

T0 = 1_700_000_000


@pytest.mark.parametrize("version", VERSIONS)
async def test_offline_session_is_replayed_with_its_original_timestamps(version):
    clock = ManualClock(T0)
    cs = await Central(tokens={"LOCAL"}).start()
    port = cs.port
    fleet = fleet_for(cs, [spec("CP1", version, connectors=2)], clock)
    async with fleet:
        await fleet.wait_connected()
        point = await cs.point("CP1")
        assert (await point.call(send_list(version, 1, [("LOCAL", "Accepted"),
                                                         ("GONE", "Blocked")]))).status == "Accepted"
        station = fleet.station("CP1")
        await cs.stop()
        await until(lambda: not station.online, "station offline")

        await clock.advance(100)
        assert await fleet.plug_in("CP1", 1, "LOCAL", need_wh=90_000, max_current_a=16)
        assert not await fleet.plug_in("CP1", 2, "GONE", need_wh=90_000, max_current_a=16)
        fleet.unplug("CP1", 2)
        assert not await fleet.plug_in("CP1", 2, "STRANGER", need_wh=90_000, max_current_a=16)
        await clock.advance(30, step_s=10)
        fleet.unplug("CP1", 1)
        assert not station.online and len([r for r in station.queue if r.tx]) == 5

        cs2 = await Central(tokens={"LOCAL"}, port=port).start()
        try:
            await cs2.wait_for(lambda: stops(cs2, version), "the replayed stop")
            (tag, ts, connector, meter_start, offline), = starts(cs2, version)
            assert (tag, ts, connector, meter_start) == ("LOCAL", iso(T0 + 100), 1, 0)
            got = samples(cs2, version)
            assert [s[0] for s in got] == [iso(T0 + 110), iso(T0 + 120), iso(T0 + 130)]
            assert [s[1] for s in got] == [int(16 * 3 * 230 * k / 3600) for k in (10, 20, 30)]
            (ts, meter_stop, reason), = stops(cs2, version)
            assert ts == iso(T0 + 130) and meter_stop == int(16 * 3 * 230 * 30 / 3600)
            if version == "2.0.1":
                assert offline is True and all(s[3] is True for s in got)
                events = [p for p in cs2.calls("TransactionEvent")]
                assert [p["seq_no"] for p in events] == [0, 1, 2, 3, 4]
                assert len({p["transaction_info"]["transaction_id"] for p in events}) == 1
                # States as they were then, though the car has left by now.
                assert [p["transaction_info"]["charging_state"] for p in events] == [
                    "Charging", "Charging", "Charging", "Charging", "Idle"]
            actions = [a for _, a, _ in cs2.received]
            assert actions.index("BootNotification") < actions.index(
                "StartTransaction" if version == "1.6" else "TransactionEvent")
            assert not cs2.calls("Authorize")  # decided locally, nothing asked later
            await until(lambda: not station.queue, "queue drained")
            assert station.online
        finally:
            await cs2.stop()


@pytest.mark.parametrize("version", VERSIONS)
async def test_offline_start_for_unknown_token_is_ended_when_the_server_refuses_it(version):
    clock = ManualClock(T0)
    cs = await Central(tokens=set()).start()
    port = cs.port
    fleet = fleet_for(cs, [spec("CP1", version)], clock)
    async with fleet:
        await fleet.wait_connected()
        station = fleet.station("CP1")
        assert station.change_conf("AllowOfflineTxForUnknownId", "true") == "Accepted"
        await cs.stop()
        await until(lambda: not station.online, "station offline")
        assert await fleet.plug_in("CP1", 1, "WHO", need_wh=90_000, max_current_a=16)
        await clock.advance(20, step_s=10)
        conn = fleet.connector("CP1", 1)
        assert conn.drawn_a == 16.0
        cs2 = await Central(tokens=set(), port=port).start()
        try:
            await cs2.wait_for(lambda: stops(cs2, version), "the stop after refusal")
            (ts, _, reason), = stops(cs2, version)
            assert reason == "DeAuthorized"
            assert conn.tx is None and conn.drawn_a == 0 and conn.ev is not None
        finally:
            await cs2.stop()


@pytest.mark.parametrize("version", VERSIONS)
async def test_offline_without_local_list_entry_refuses(version):
    async with Central(tokens={"X"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version)])
        async with fleet:
            await fleet.wait_connected()
            station = fleet.station("CP1")
            await cs.stop()
            await until(lambda: not station.online, "station offline")
            assert not await fleet.plug_in("CP1", 1, "X", need_wh=9000, max_current_a=16)
            assert fleet.connector("CP1", 1).tx is None and not station.queue
            await cs.start()  # back on the same port
            await fleet.wait_connected()


@pytest.mark.parametrize("version", VERSIONS)
async def test_network_cut_at_one_wallbox_queues_and_replays(version):
    clock = ManualClock(T0)
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version), spec("CP2", version)], clock)
        async with fleet:
            await fleet.wait_connected()
            assert await fleet.plug_in("CP1", 1, "T", need_wh=90_000, max_current_a=16)
            station = fleet.station("CP1")
            await until(lambda: not station.queue, "the start answered")
            await fleet.set_network("CP1", False)
            await until(lambda: not station.online, "CP1 offline")
            await clock.advance(20, step_s=10)
            fleet.unplug("CP1", 1)
            assert len(station.queue) == 3 and fleet.station("CP2").online
            assert not samples(cs, version, "CP1") and not stops(cs, version, "CP1")
            await fleet.set_network("CP1", True)
            await cs.wait_for(lambda: stops(cs, version, "CP1"), "the late stop")
        assert [s[0] for s in samples(cs, version, "CP1")] == [iso(T0 + 10), iso(T0 + 20)]
        assert stops(cs, version, "CP1")[0][0] == iso(T0 + 20)
        assert len(cs.calls("BootNotification", "CP1")) == 2


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_start_whose_answer_was_lost_is_sent_again_unchanged(version):
    clock = ManualClock(T0)
    async with Central(tokens={"T"}) as cs:
        cs.hang_up_on = {"StartTransaction", "TransactionEvent"}
        fleet = fleet_for(cs, [spec("CP1", version)], clock)
        async with fleet:
            await fleet.wait_connected()
            assert await fleet.plug_in("CP1", 1, "T", need_wh=90_000, max_current_a=16)
            await cs.wait_for(lambda: len(starts(cs, version)) == 2, "the start sent again")
            await until(lambda: fleet.links["CP1"].boots == 2, "reconnected")
        first, again = starts(cs, version)
        assert first == again   # same tag, time, connector, meter (and 2.0.1 offline flag)
        if version == "2.0.1":
            events = cs.calls("TransactionEvent")
            assert [e["seq_no"] for e in events] == [0, 0]
            assert events[0]["transaction_info"] == events[1]["transaction_info"]
