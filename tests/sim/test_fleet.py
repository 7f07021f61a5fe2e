"""Random arrivals, heartbeats, the snapshot for displays, and the command line."""
import asyncio
import os
import subprocess
import sys

import pytest

from central import Central
from helpers import fleet_for, spec, starts, stops, until
from host_tools.sim_wallbox import (ConnectorSpec, Fleet, ManualClock, StationSpec, Traffic,
                                    build_specs)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def _arrivals(seed):
    clock = ManualClock()
    async with Central(tokens={"T1", "T2"}) as cs:
        # Cars leave after their stay only, so departures depend on simulated time alone.
        traffic = Traffic(["T1", "T2", "NOPE"], mean_gap_s=300, stay_s=(600, 1200),
                          leave_when_full_share=0.0)
        fleet = fleet_for(cs, [spec("A", "1.6", connectors=2, meter_interval_s=900),
                               spec("B", "2.0.1", meter_interval_s=900)], clock,
                          traffic=traffic)
        fleet.random.seed(seed)
        async with fleet:
            await fleet.wait_connected()
            # Two heartbeat loops and the arrivals loop asleep: time may start.
            await until(lambda: clock.pending == 3, "loops asleep")
            quiet = lambda: all(not st.queue and not st.authorizing
                                for st in fleet.stations.values())
            for _ in range(3 * 30):
                # Time moves only while nothing waits for the server, so what happens
                # depends on simulated time alone.
                await clock.advance(120)
                await until(quiet, "nothing in flight")
            tags = [p.get("id_tag") or p["id_token"]["id_token"] for p in cs.calls("Authorize")]
            ended = len(stops(cs, "1.6")) + len(stops(cs, "2.0.1"))
            return [(t, s, c, ev.id_tag, ev.need_wh, ev.max_current_a, ev.stay_s)
                    for t, s, c, ev in fleet.arrivals], tags, ended


async def test_seeded_arrivals_repeat_exactly_and_cars_come_and_go():
    first, tags, ended = await _arrivals(5)
    again, _, ended_again = await _arrivals(5)
    other, _, _ = await _arrivals(6)
    assert first == again and first != other and ended == ended_again
    assert len(first) >= 10
    # Every arrival asked the server about its token, and cars came and went.
    assert sorted(tags) == sorted(a[3] for a in first)
    assert ended >= 3
    assert all(600 <= a[6] <= 1200 and 5000 <= a[4] <= 40000 for a in first)


async def test_heartbeat_follows_the_interval_the_server_gives():
    clock = ManualClock()
    async with Central() as cs:   # the test central system answers interval=300
        fleet = fleet_for(cs, [spec("A", "1.6")], clock)
        async with fleet:
            await fleet.wait_connected()
            assert fleet.station("A").conf_int("HeartbeatInterval") == 300
            await clock.advance(299)
            assert not cs.calls("Heartbeat")
            await clock.advance(1)
            await cs.wait_for(lambda: len(cs.calls("Heartbeat")) == 1, "a heartbeat")
            for n in (2, 3):
                # The loop sleeps again only after the server answered (real time).
                await until(lambda: clock.pending == 1, "heartbeat loop asleep")
                await clock.advance(300)
                await cs.wait_for(lambda: len(cs.calls("Heartbeat")) == n, "heartbeat %d" % n)


async def test_snapshot_shows_what_is_allocated_to_whom():
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("A", "1.6", connectors=2)])
        async with fleet:
            await fleet.wait_connected()
            await fleet.plug_in("A", 2, "T", need_wh=5000, max_current_a=20, phases=1)
            await cs.wait_for(lambda: starts(cs, "1.6"), "a start")
            await until(lambda: fleet.connector("A", 2).tx.server_id is not None, "numbered")
            rows = fleet.snapshot()
    assert rows[0]["state"] == "Available" and rows[0]["id_tag"] is None
    two = rows[1]
    assert (two["station"], two["connector"], two["state"], two["id_tag"]) == ("A", 2, "Charging", "T")
    assert (two["drawn_a"], two["phases"], two["limit_a"], two["online"]) == (20.0, 1, None, True)
    assert two["transaction_id"] == "100" and two["need_wh"] == 5000


def test_specs_and_inputs_are_checked_with_field_names():
    with pytest.raises(ValueError, match="version"):
        StationSpec(id="A", version="1.5")
    with pytest.raises(ValueError, match="id"):
        StationSpec(id="A/B")
    with pytest.raises(ValueError, match="connectors"):
        StationSpec(id="A", connectors=0)
    with pytest.raises(ValueError, match=r"connectors\[1\].max_current_a"):
        StationSpec(id="A", connectors=[ConnectorSpec(), ConnectorSpec(3, 0)])
    with pytest.raises(ValueError, match="local_list_max: must be an integer >= 0"):
        StationSpec(id="A", local_list_max=-1)
    with pytest.raises(ValueError, match="heartbeat_s"):
        StationSpec(id="A", heartbeat_s=0)
    with pytest.raises(ValueError, match="duplicate ids"):
        Fleet("ws://127.0.0.1:1", [StationSpec(id="A"), StationSpec(id="A")])
    with pytest.raises(ValueError, match="tokens"):
        Traffic([])
    specs = build_specs(4, "mixed", uncontrollable=1, connectors=2)
    assert [s.id for s in specs] == ["CP001", "CP002", "CP003", "CP004"]
    assert [s.version for s in specs] == ["1.6", "2.0.1", "1.6", "2.0.1"]
    assert [s.accept_profiles for s in specs] == [True, True, True, False]
    assert all(len(s.connectors) == 2 for s in specs)


async def test_plug_in_checks_the_connector():
    fleet = Fleet("ws://127.0.0.1:1", [StationSpec(id="A")], clock=ManualClock())
    with pytest.raises(ValueError, match="no connector 3"):
        await fleet.plug_in("A", 3, "T", need_wh=1000, max_current_a=16)
    with pytest.raises(ValueError, match="unknown station"):
        await fleet.plug_in("Z", 1, "T", need_wh=1000, max_current_a=16)
    with pytest.raises(ValueError, match="need_wh"):
        await fleet.plug_in("A", 1, "T", need_wh=0, max_current_a=16)
    await fleet.start()
    with pytest.raises(RuntimeError, match="already started"):
        await fleet.start()
    await fleet.stop()
    # Offline and not in any list: refused, connector occupied by the car.
    assert not await fleet.plug_in("A", 1, "T", need_wh=1000, max_current_a=16)
    with pytest.raises(ValueError, match="occupied"):
        await fleet.plug_in("A", 1, "T", need_wh=1000, max_current_a=16)


async def test_command_line_runs_stations_against_a_server():
    async with Central() as cs:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "host_tools.sim_wallbox", "--url", cs.url, "--stations", "3",
            "--version", "mixed", "--prefix", "SIM", "--show-every-s", "0", cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await cs.wait_for(lambda: len(cs.calls("BootNotification")) == 3, "three boots",
                              timeout=20)
        finally:
            proc.terminate()
            code = await proc.wait()
        await cs.wait_for(lambda: not cs.points, "connections closed by the simulator")
    assert code == 0   # SIGTERM stops it cleanly
    assert sorted(s for s, a, _ in cs.received if a == "BootNotification") == [
        "SIM001", "SIM002", "SIM003"]


async def test_command_line_stops_after_its_duration_and_prints_the_table():
    async with Central(tokens={"A"}) as cs:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "host_tools.sim_wallbox", "--url", cs.url, "--stations", "2",
            "--tokens", "A", "--mean-gap-s", "1", "--speed", "50", "--show-every-s", "0.2",
            "--duration-s", "1", cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    lines = out.decode().splitlines()
    assert lines[0].split()[:4] == ["station", "c", "state", "token"]
    assert any(line.startswith("CP002") for line in lines)
    assert any(line.startswith("total: ") and "stations offline" in line for line in lines)
    assert cs.calls("StartTransaction")   # cars arrived with the token and charged


async def test_command_line_rejects_bad_arguments():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "host_tools.sim_wallbox", "--stations", "0", cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"stations: must be >= 1" in err


async def test_command_line_rejects_a_negative_connect_spread():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "host_tools.sim_wallbox", "--connect-spread-s", "-1", cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"--connect-spread-s: must be 0 or more" in err
