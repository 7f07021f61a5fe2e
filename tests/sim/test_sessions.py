"""Boot, sessions and meter values of the simulator against a real websocket server."""
import ssl
import subprocess

import pytest

from central import Central
from helpers import VERSIONS, fleet_for, samples, spec, starts, statuses, stops, until
from host_tools.sim_wallbox import ManualClock, iso


@pytest.mark.parametrize("version", VERSIONS)
async def test_boot_sends_boot_and_status_of_every_connector(version):
    async with Central() as cs:
        fleet = fleet_for(cs, [spec("CP1", version, connectors=2)])
        async with fleet:
            await fleet.wait_connected()
            await cs.wait_for(lambda: len(cs.calls("StatusNotification", "CP1")) >= 2,
                              "two status notifications")
        assert len(cs.calls("BootNotification", "CP1")) == 1
        assert statuses(cs, "CP1") == ["Available", "Available"]
        if version == "2.0.1":
            assert sorted(p["evse_id"] for p in cs.calls("StatusNotification")) == [1, 2]


@pytest.mark.parametrize("validate", [True, False], ids=["schema", "lean"])
@pytest.mark.parametrize("version", VERSIONS)
async def test_session_authorizes_starts_meters_and_stops(version, validate):
    clock = ManualClock(1_700_000_000)
    async with Central(tokens={"TAG1"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, meter_interval_s=10)], clock,
                          validate_schema=validate)
        async with fleet:
            await fleet.wait_connected()
            started = await fleet.plug_in("CP1", 1, "TAG1", need_wh=50_000, max_current_a=16)
            assert started
            await cs.wait_for(lambda: starts(cs, version), "a start")
            await clock.advance(30, step_s=10)
            await cs.wait_for(lambda: len(samples(cs, version)) >= 3, "three samples")
            await clock.advance(5)
            fleet.unplug("CP1", 1)
            await cs.wait_for(lambda: stops(cs, version), "a stop")
        assert [p for p in cs.calls("Authorize")]
        (tag, ts, conn, meter_start, _), = starts(cs, version)
        assert (tag, ts, conn, meter_start) == ("TAG1", iso(1_700_000_000), 1, 0)
        got = samples(cs, version)[:3]
        assert [s[0] for s in got] == [iso(1_700_000_000 + 10 * k) for k in (1, 2, 3)]
        # 16 A on three phases at 230 V for 10 s: 30.67 Wh per interval.
        per_10s = 16 * 3 * 230 * 10 / 3600
        assert [s[1] for s in got] == [int(per_10s * k) for k in (1, 2, 3)]
        assert all(s[2] == [16.0, 16.0, 16.0] for s in got)
        (ts, meter_stop, reason), = stops(cs, version)
        assert ts == iso(1_700_000_035)
        assert meter_stop == int(16 * 3 * 230 * 35 / 3600)
        assert reason == "EVDisconnected"


@pytest.mark.parametrize("version", VERSIONS)
async def test_energy_grows_with_the_drawn_current(version):
    clock = ManualClock()
    async with Central(tokens={"A", "B"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, connectors=2, meter_interval_s=600)], clock)
        async with fleet:
            await fleet.wait_connected()
            assert await fleet.plug_in("CP1", 1, "A", need_wh=90_000, max_current_a=32)
            assert await fleet.plug_in("CP1", 2, "B", need_wh=90_000, max_current_a=8, phases=1)
            await clock.advance(3600, step_s=600)
            one, two = fleet.connector("CP1", 1), fleet.connector("CP1", 2)
            assert one.drawn_a == 32.0 and one.drawn_phases == 3
            assert two.drawn_a == 8.0 and two.drawn_phases == 1
            assert int(one.session_wh) == 32 * 3 * 230
            assert int(two.session_wh) == 8 * 1 * 230
            await cs.wait_for(lambda: len(samples(cs, version)) == 12, "twelve samples")
        by_phase = {}
        for _, energy, amps, _ in samples(cs, version):
            by_phase.setdefault(tuple(amps), []).append(energy)
        assert by_phase[(32.0, 32.0, 32.0)][-1] == 32 * 3 * 230
        assert by_phase[(8.0, 0.0, 0.0)][-1] == 8 * 230


@pytest.mark.parametrize("version", VERSIONS)
async def test_full_car_stops_drawing_and_leaves_when_asked(version):
    clock = ManualClock()
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, connectors=2)], clock)
        async with fleet:
            await fleet.wait_connected()
            await fleet.plug_in("CP1", 1, "T", need_wh=1000, max_current_a=16)
            await fleet.plug_in("CP1", 2, "T", need_wh=1000, max_current_a=16,
                                leave_when_full=True)
            await clock.advance(600, step_s=10)
            stays, leaves = fleet.connector("CP1", 1), fleet.connector("CP1", 2)
            assert stays.state == "SuspendedEV" and stays.drawn_a == 0
            assert stays.tx is not None and 1000 <= stays.session_wh < 1000 + 31
            assert leaves.tx is None and leaves.ev is None and leaves.state == "Available"
            await cs.wait_for(lambda: stops(cs, version), "a stop")
        (_, meter_stop, reason), = stops(cs, version)
        assert reason == "EVDisconnected" and 1000 <= meter_stop < 1031


@pytest.mark.parametrize("version", VERSIONS)
async def test_unknown_token_does_not_start(version):
    async with Central(tokens={"GOOD"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version)])
        async with fleet:
            await fleet.wait_connected()
            assert not await fleet.plug_in("CP1", 1, "BAD", need_wh=5000, max_current_a=16)
            conn = fleet.connector("CP1", 1)
            assert conn.tx is None and conn.state == "Preparing" and conn.drawn_a == 0
        assert cs.calls("Authorize") and not starts(cs, version)


async def test_basic_auth_password_is_sent_and_a_wrong_one_is_refused():
    async with Central(passwords={"GOOD": "s3cret", "BAD": "other"}) as cs:
        fleet = fleet_for(cs, [spec("GOOD", "1.6", password="s3cret"),
                               spec("BAD", "2.0.1", password="wrong")])
        async with fleet:
            await fleet.wait_connected(["GOOD"])
            await until(lambda: "BAD" in cs.refused, "BAD refused")
            assert not fleet.station("BAD").online
            assert "InvalidStatus" in (fleet.links["BAD"].last_error or "")
        assert [s for s, a, _ in cs.received if a == "BootNotification"] == ["GOOD"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_refused_transaction_message_does_not_block_the_queue(version):
    clock = ManualClock()
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, meter_interval_s=10)], clock)
        station = fleet.station("CP1")
        async with fleet:
            await fleet.wait_connected()
            cs.fail_actions = {"StartTransaction", "TransactionEvent"}
            assert await fleet.plug_in("CP1", 1, "T", need_wh=90_000, max_current_a=16)
            await clock.advance(20, step_s=10)
            fleet.unplug("CP1", 1)
            await until(lambda: not station.queue, "queue worked off")
            assert station.online and fleet.links["CP1"].boots == 1
            cs.fail_actions = set()
            assert await fleet.plug_in("CP1", 1, "T", need_wh=90_000, max_current_a=16)
            await cs.wait_for(lambda: len(starts(cs, version)) == 2, "the next start")
        # 1.6: meter values and stop of the unnumbered transaction were dropped;
        # 2.0.1: every event was tried (and refused) in order.
        tried = cs.calls("StartTransaction") + cs.calls("TransactionEvent")
        assert len(tried) == (2 if version == "1.6" else 5)


def _self_signed(tmp_path):
    key, crt = tmp_path / "server.key", tmp_path / "server.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return crt, key


async def test_tls_with_basic_auth_and_an_untrusted_server_is_refused(tmp_path):
    crt, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(crt, key)
    trusting = ssl.create_default_context(cafile=str(crt))
    async with Central(tokens={"T"}, passwords={"CP1": "pw", "CP2": "pw"}, ssl=server_ctx) as cs:
        assert cs.url.startswith("wss://")
        good = fleet_for(cs, [spec("CP1", "2.0.1", password="pw")], ssl=trusting)
        bad = fleet_for(cs, [spec("CP2", "1.6", password="pw")])   # system CAs only
        async with good, bad:
            await good.wait_connected()
            assert await good.plug_in("CP1", 1, "T", need_wh=5000, max_current_a=16)
            await until(lambda: "CERTIFICATE" in (bad.links["CP2"].last_error or "").upper(),
                        "CP2 refused the server's certificate")
            assert not bad.station("CP2").online
        assert [s for s, a, _ in cs.received if a == "BootNotification"] == ["CP1"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_pending_boot_is_retried_and_nothing_else_is_sent_before_acceptance(version):
    async with Central() as cs:
        cs.boot_answers = ["Pending"]
        fleet = fleet_for(cs, [spec("CP1", version)])
        async with fleet:
            await fleet.wait_connected()
            await cs.wait_for(lambda: cs.calls("StatusNotification"), "a status")
        actions = [a for _, a, _ in cs.received]
        assert actions[:3] == ["BootNotification", "BootNotification", "StatusNotification"]
        assert fleet.links["CP1"].boots == 1


async def test_v201_transaction_ids_fit_the_36_character_limit():
    long_id = "A-VERY-LONG-STATION-NAME-01"
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec(long_id, "2.0.1")])   # schema checks on both sides
        async with fleet:
            await fleet.wait_connected()
            assert await fleet.plug_in(long_id, 1, "T", need_wh=9000, max_current_a=16)
            await cs.wait_for(lambda: starts(cs, "2.0.1"), "a start")
        tx_id = cs.calls("TransactionEvent")[0]["transaction_info"]["transaction_id"]
        assert len(tx_id) <= 36
