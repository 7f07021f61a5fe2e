"""Edge cases: bad values past the schema, retransmissions, silent or odd wallboxes."""
import asyncio
import json
import sqlite3

import pytest
import websockets
from ocpp_testdata import NOW
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as res16
from ocpp.v16.enums import Action as A16
from ocpp.v201 import call as call201
from ocpp_wallbox import Wallbox16, basic, connect, recv_reply, ts, until
from ocpp_wallbox import tx_event as _tx_event


async def test_bad_timestamp_is_a_property_error_and_changes_nothing(gateway, sessions):
    ws = await websockets.connect("ws://127.0.0.1:%d/CP16" % gateway.port,
                                  subprotocols=["ocpp1.6"],
                                  additional_headers=basic("CP16", "secret-16"), proxy=None)
    await ws.send(json.dumps([2, "b1", "StartTransaction", {
        "connectorId": 1, "idTag": "STAFF1", "meterStart": 0, "timestamp": "yesterday"}]))
    reply = await recv_reply(ws)
    assert reply[:3] == [4, "b1", "PropertyConstraintViolation"]
    assert reply[4] == {"field": "timestamp"}
    assert sessions.open_sessions() == []
    await ws.close()


async def test_start_answer_means_committed_on_disk(gateway, tmp_path):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    res = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1",
                                                  meter_start=0, timestamp=ts(NOW)))
    # a second, independent connection sees the row: it was committed before the answer
    other = sqlite3.connect(str(tmp_path / "edge.db"))
    row = other.execute("SELECT state FROM sessions WHERE transaction_id=?",
                        (str(res.transaction_id),)).fetchone()
    other.close()
    assert row == ("started",)
    await c.close()


async def test_retransmitted_2_0_1_event_does_not_duplicate_samples(gateway, sessions):
    c = await connect(gateway.port, "CP201", "2.0.1", "secret-201")
    await c.cp.call(_tx_event("Started", "tx-s", NOW, 0, token="STAFF1", energy_wh=0))
    upd = _tx_event("Updated", "tx-s", NOW + 30, 1, energy_wh=400, trigger="MeterValuePeriodic")
    await c.cp.call(upd)
    await c.cp.call(upd)            # same seqNo, new message id (offline queue replay)
    rec = sessions.by_transaction("CP201", "tx-s")
    # the Started event's register reading, then the update once
    assert [s["energy_wh"] for s in sessions.samples(rec["session_id"])] == [0, 400]
    await c.close()


async def test_stop_of_unknown_transaction_is_answered(gateway, sessions):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    res = await c.cp.call(call16.StopTransaction(meter_stop=10, timestamp=ts(NOW),
                                                 transaction_id=424242))
    assert res is not None and sessions.open_sessions() == []
    await c.close()


async def test_new_connection_replaces_old_one(gateway, events):
    a = await connect(gateway.port, "CP16", "1.6", "secret-16")
    b = await connect(gateway.port, "CP16", "1.6", "secret-16", boot=False)
    await until(lambda: a.ws.state.name == "CLOSED")
    assert gateway.station_status()["CP16"]["connected"] is True
    res = await b.cp.call(call16.Heartbeat())
    assert res.current_time
    await b.close()
    await a.close()
    connected = [body["connected"] for name, body in events
                 if name == "station_connected" and body["station"] == "CP16"]
    assert connected[:2] == [True, True]     # no "disconnected" while replaced


async def test_reboot_mid_transaction_gets_limits_again(gateway):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1", meter_start=0,
                                            timestamp=ts(NOW)))
    assert (await gateway.apply_limits({("CP16", 1): (120, 3)}))[("CP16", 1)] == "accepted"
    await c.close()
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")   # boots again
    p = await c.cp.wait_for("SetChargingProfile",
                            lambda p: p["profile"]["charging_profile_purpose"] == "TxProfile")
    assert p["profile"]["charging_schedule"]["charging_schedule_period"][0]["limit"] == 12
    await c.close()


async def test_clear_limits(gateway):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    assert await gateway.clear_limits("CP16", 1) is True
    assert c.cp.calls("ClearChargingProfile")[-1] == {"id": 101, "connector_id": 1}
    assert await gateway.clear_limits("CP99") is False
    await c.close()


class _NoListWallbox(Wallbox16):
    @on(A16.get_local_list_version)
    def on_get_local_list_version(self):
        self._record("GetLocalListVersion", {})
        return res16.GetLocalListVersion(list_version=-1)


async def test_wallbox_without_local_list_is_left_alone(gateway):
    ws = await websockets.connect("ws://127.0.0.1:%d/CP16" % gateway.port,
                                  subprotocols=["ocpp1.6"],
                                  additional_headers=basic("CP16", "secret-16"), proxy=None)
    cp = _NoListWallbox("CP16", ws)
    task = asyncio.ensure_future(cp.start())
    await cp.boot()
    await cp.wait_for("TriggerMessage")
    assert cp.calls("SendLocalList") == []
    assert await gateway.sync_local_list(gateway.stations["CP16"]) == []
    assert len(cp.calls("GetLocalListVersion")) == 1
    await ws.close()
    task.cancel()


class _SilentProfileWallbox(Wallbox16):
    @on(A16.set_charging_profile)
    async def on_set_charging_profile(self, connector_id, cs_charging_profiles):
        self._record("SetChargingProfile", {"connector_id": connector_id,
                                            "profile": cs_charging_profiles})
        if cs_charging_profiles["charging_profile_purpose"] == "TxProfile":
            await asyncio.Event().wait()     # never answers
        return res16.SetChargingProfile(status="Accepted")


async def test_silent_wallbox_does_not_block_limits(gateway):
    gateway.profile_timeout_s = 0.2
    ws = await websockets.connect("ws://127.0.0.1:%d/CP16" % gateway.port,
                                  subprotocols=["ocpp1.6"],
                                  additional_headers=basic("CP16", "secret-16"), proxy=None)
    cp = _SilentProfileWallbox("CP16", ws)
    task = asyncio.ensure_future(cp.start())
    await cp.boot()
    await cp.wait_for("TriggerMessage")
    start = asyncio.ensure_future(cp.call(call16.StartTransaction(
        connector_id=1, id_tag="STAFF1", meter_start=0, timestamp=ts(NOW))))
    await start
    out = await gateway.apply_limits({("CP16", 1): (100, 3)})
    assert out == {("CP16", 1): "error"}
    assert gateway.live_sessions()[0]["controllable"] is False
    task.cancel()
    await ws.close()


async def test_handler_sees_bad_sampled_value_and_keeps_going(gateway, sessions):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    res = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1",
                                                  meter_start=0, timestamp=ts(NOW)))
    await c.cp.call(call16.MeterValues(connector_id=1, transaction_id=res.transaction_id,
                                       meter_value=[{"timestamp": ts(NOW + 1), "sampled_value": [
                                           {"value": "n/a"}, {"value": "250"}]}]))
    rec = sessions.by_transaction("CP16", res.transaction_id)
    assert [s["energy_wh"] for s in sessions.samples(rec["session_id"])] == [250]
    await c.close()


async def test_201_meter_values_without_transaction_use_open_session(gateway, sessions):
    c = await connect(gateway.port, "CP201", "2.0.1", "secret-201")
    await c.cp.call(_tx_event("Started", "tx-m", NOW, 0, token="CARD1", energy_wh=10))
    await c.cp.call(call201.MeterValues(evse_id=1, meter_value=[{
        "timestamp": ts(NOW + 5), "sampled_value": [
            {"value": 6.5, "measurand": "Current.Import", "phase": "L1",
             "unit_of_measure": {"unit": "A"}}]}]))
    live = gateway.live_sessions()
    assert live[0]["drawn_da"] == [0, 65, 0]   # connector L1 is site L2 on CP201
    assert live[0]["prioritised"] is False
    await c.close()


async def test_new_transaction_closes_one_that_lost_its_stop(gateway, sessions, events):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    r1 = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1",
                                                 meter_start=100, timestamp=ts(NOW)))
    await c.cp.call(call16.MeterValues(connector_id=1, transaction_id=r1.transaction_id,
                                       meter_value=[{"timestamp": ts(NOW + 60),
                                                     "sampled_value": [{"value": "900"}]}]))
    r2 = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF2",
                                                 meter_start=950, timestamp=ts(NOW + 600)))
    old = sessions.by_transaction("CP16", r1.transaction_id)
    assert old["state"] == "completed" and old["stop_reason"] == "Superseded"
    assert old["energy_wh"] == 800 and old["stopped_s"] == NOW + 600
    assert [s["key"] for s in gateway.live_sessions()] == [("CP16", 1)]
    assert gateway.live_sessions()[0]["session_id"] == \
        sessions.by_transaction("CP16", r2.transaction_id)["session_id"]
    await c.close()


async def test_201_start_without_register_takes_first_reading(gateway, sessions):
    c = await connect(gateway.port, "CP201", "2.0.1", "secret-201")
    await c.cp.call(_tx_event("Started", "tx-n", NOW, 0, token="STAFF1"))
    assert sessions.by_transaction("CP201", "tx-n")["meter_start_wh"] is None
    await c.cp.call(_tx_event("Updated", "tx-n", NOW + 30, 1, energy_wh=70000,
                              trigger="MeterValuePeriodic"))
    await c.cp.call(_tx_event("Ended", "tx-n", NOW + 60, 2, energy_wh=70500, reason="Local"))
    rec = sessions.by_transaction("CP201", "tx-n")
    # not 70500 Wh: the register's absolute value is not what this session charged
    assert rec["meter_start_wh"] == 70000 and rec["energy_wh"] == 500
    await c.close()


async def test_remote_start_tag_lapses(gateway, clock):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    out = await gateway.remote_start("CP16", 2, "pay-old")
    assert (await c.cp.call(call16.Authorize(id_tag=out["id_tag"]))).id_tag_info["status"] == \
        "Accepted"
    clock.t = NOW + gateway.remote_start_ttl_s + 1
    assert (await c.cp.call(call16.Authorize(id_tag=out["id_tag"]))).id_tag_info["status"] == \
        "Invalid"
    await gateway.remote_start("CP16", 2, "pay-new")     # purges the lapsed one
    assert out["id_tag"] not in gateway.stations["CP16"].pending_remote
    await c.close()


async def test_non_ascii_credentials_are_refused_not_crashing(gateway):
    with pytest.raises(websockets.InvalidStatus) as e:
        await websockets.connect("ws://127.0.0.1:%d/CP16" % gateway.port,
                                 subprotocols=["ocpp1.6"],
                                 additional_headers={"Authorization": "Basic Zm9v\u00e9"},
                                 proxy=None)
    assert e.value.response.status_code == 401


async def test_token_less_transactions_are_bounded(gateway):
    c = await connect(gateway.port, "CP201", "2.0.1", "secret-201")
    for i in range(40):
        await c.cp.call(_tx_event("Started", "junk-%d" % i, NOW, 0, trigger="CablePluggedIn"))
    pending = gateway.stations["CP201"].pending_tx
    assert len(pending) == 16 and "junk-39" in pending and "junk-0" not in pending
    await c.close()


async def test_live_phases_follow_accepted_profile(gateway):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1", meter_start=0,
                                            timestamp=ts(NOW)))
    assert gateway.live_sessions()[0]["phases"] == 3
    await gateway.apply_limits({("CP16", 1): (100, 1)})
    assert gateway.live_sessions()[0]["phases"] == 1
    await c.close()


async def test_silent_wallbox_does_not_hold_up_others(gateway):
    gateway.profile_timeout_s = 30       # the silent one stays in flight for the whole test
    gateway.apply_wait_s = 0.05
    ws = await websockets.connect("ws://127.0.0.1:%d/CP16" % gateway.port,
                                  subprotocols=["ocpp1.6"],
                                  additional_headers=basic("CP16", "secret-16"), proxy=None)
    silent = _SilentProfileWallbox("CP16", ws)
    task = asyncio.ensure_future(silent.start())
    await silent.boot()
    await silent.wait_for("TriggerMessage")
    await silent.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1", meter_start=0,
                                              timestamp=ts(NOW)))
    good = await connect(gateway.port, "CP201", "2.0.1", "secret-201")
    await good.cp.call(_tx_event("Started", "tx-g", NOW, 0, token="STAFF1", energy_wh=0))
    out = await gateway.apply_limits({("CP16", 1): (100, 3)})
    assert out == {("CP16", 1): "pending"}      # still waiting; the loop goes on
    gateway.apply_wait_s = 5                    # ample for the answering wallbox
    out = await gateway.apply_limits({("CP16", 1): (90, 3), ("CP201", 1): (100, 3)})
    assert out == {("CP16", 1): "busy", ("CP201", 1): "accepted"}
    task.cancel()
    await ws.close()
    await good.close()


async def test_store_failure_is_an_internal_error_and_retry_works(gateway, sessions):
    ws = await websockets.connect("ws://127.0.0.1:%d/CP16" % gateway.port,
                                  subprotocols=["ocpp1.6"],
                                  additional_headers=basic("CP16", "secret-16"), proxy=None)
    frame = json.dumps([2, "st-1", "StartTransaction", {
        "connectorId": 1, "idTag": "STAFF1", "meterStart": 0,
        "timestamp": "2025-06-02T06:00:00Z"}])
    real_start = sessions.start

    def failing_start(*a, **kw):
        raise sqlite3.OperationalError("disk I/O error")
    sessions.start = failing_start
    await ws.send(frame)
    reply = await recv_reply(ws)
    assert reply[:3] == [4, "st-1", "InternalError"]     # nothing acknowledged
    sessions.start = real_start
    await ws.send(frame)                                  # the wallbox retries, same id
    reply = await recv_reply(ws)
    assert reply[0] == 3 and reply[1] == "st-1"
    assert len(sessions.open_sessions()) == 1
    await ws.close()


async def test_repeated_requests_coalesce(gateway):
    """30 after-boot requests while one runs: one run now, exactly one more after."""
    st = gateway.stations["CP16"]
    gate = asyncio.Event()
    runs = []

    async def work():
        runs.append(len(runs))
        await gate.wait()
    gateway.coalesce(st, "boot", work)
    await until(lambda: len(runs) == 1)          # first run started and is blocked
    tasks = len(gateway._tasks)
    for _ in range(29):
        gateway.coalesce(st, "boot", work)       # requests while it runs
    assert len(gateway._tasks) == tasks          # no new tasks
    gate.set()
    await until(lambda: not gateway._running)
    assert runs == [0, 1]


async def test_boot_flood_is_answered(gateway):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    res = await asyncio.gather(*[c.cp.boot() for _ in range(30)])
    assert all(r.status == "Accepted" for r in res)
    await until(lambda: not gateway._running)
    assert len(c.cp.calls("TriggerMessage")) <= 31
    await c.close()


class _MuteConfigWallbox(Wallbox16):
    @on(A16.change_configuration)
    async def on_change_configuration(self, key, value):
        self._record("ChangeConfiguration", {"key": key, "value": value})
        await asyncio.Event().wait()            # never answers


async def test_disconnect_ends_pending_calls_and_reboot_sequence_runs_again(gateway):
    ws = await websockets.connect("ws://127.0.0.1:%d/CP16" % gateway.port,
                                  subprotocols=["ocpp1.6"],
                                  additional_headers=basic("CP16", "secret-16"), proxy=None)
    mute = _MuteConfigWallbox("CP16", ws)
    task = asyncio.ensure_future(mute.start())
    # the boot answer cannot be read while the mute handler blocks this wallbox's loop,
    # so send the boot frame by hand and wait for the edge's first call instead
    await ws.send('[2,"b1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
    await mute.wait_for("ChangeConfiguration")
    task.cancel()
    await ws.close()
    # the edge's after-boot sequence must not wait out its 10 s response timeout
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    assert c.cp.calls("TriggerMessage")
    await c.close()


async def test_edge_restart_mid_transaction(site, lists, sessions, clock):
    from ocpp_testdata import STATIONS_CFG
    from edge.ocpp_gateway import Gateway
    gw1 = Gateway(site, STATIONS_CFG, lists, sessions, clock=clock, response_timeout_s=10)
    port = await gw1.start("127.0.0.1", 0)
    c = await connect(port, "CP16", "1.6", "secret-16")
    res = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1",
                                                  meter_start=0, timestamp=ts(NOW)))
    await c.close()
    await gw1.stop()
    # a new edge process on the same store; the wallbox reconnects without rebooting
    gw2 = Gateway(site, STATIONS_CFG, lists, sessions, clock=clock, response_timeout_s=10)
    port = await gw2.start("127.0.0.1", 0)
    try:
        c = await connect(port, "CP16", "1.6", "secret-16", boot=False)
        await c.cp.call(call16.Heartbeat())
        await c.cp.wait_for("TriggerMessage")         # settings, list, ... were sent
        assert c.cp.calls("SendLocalList")[0]["update_type"] == "Full"
        live = gw2.live_sessions()
        assert [s["key"] for s in live] == [("CP16", 1)] and live[0]["controllable"]
        assert (await gw2.apply_limits({("CP16", 1): (100, 3)})) == {("CP16", 1): "accepted"}
        await c.cp.call(call16.StopTransaction(meter_stop=5000, timestamp=ts(NOW + 60),
                                               transaction_id=res.transaction_id))
        assert sessions.by_transaction("CP16", res.transaction_id)["energy_wh"] == 5000
        await c.close()
    finally:
        await gw2.stop()


class _BrokenProfileWallbox(Wallbox16):
    @on(A16.set_charging_profile, skip_schema_validation=True)
    def on_set_charging_profile(self, connector_id, cs_charging_profiles):
        self._record("SetChargingProfile", {"connector_id": connector_id,
                                            "profile": cs_charging_profiles})
        if cs_charging_profiles["charging_profile_purpose"] == "TxProfile":
            if cs_charging_profiles["charging_schedule"]["charging_schedule_period"][0][
                    "limit"] > 10:
                raise RuntimeError("firmware bug")       # -> CallError InternalError
            return res16.SetChargingProfile(status="Bogus")
        return res16.SetChargingProfile(status="Accepted")


async def test_callerror_and_nonsense_answers_to_profiles(gateway):
    ws = await websockets.connect("ws://127.0.0.1:%d/CP16" % gateway.port,
                                  subprotocols=["ocpp1.6"],
                                  additional_headers=basic("CP16", "secret-16"), proxy=None)
    cp = _BrokenProfileWallbox("CP16", ws)
    task = asyncio.ensure_future(cp.start())
    await cp.boot()
    await cp.wait_for("TriggerMessage")
    await cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1", meter_start=0,
                                          timestamp=ts(NOW)))
    assert await gateway.apply_limits({("CP16", 1): (160, 3)}) == {("CP16", 1): "error"}
    assert await gateway.apply_limits({("CP16", 1): (60, 3)}) == {("CP16", 1): "rejected"}
    assert gateway.live_sessions()[0]["controllable"] is False
    task.cancel()
    await ws.close()


async def test_non_finite_and_absurd_samples_are_skipped(gateway, sessions):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    res = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1",
                                                  meter_start=0, timestamp=ts(NOW)))
    await c.cp.call(call16.MeterValues(connector_id=1, transaction_id=res.transaction_id,
                                       meter_value=[{"timestamp": ts(NOW + 1), "sampled_value": [
                                           {"value": "NaN"}, {"value": "inf"},
                                           {"value": "1e40"}, {"value": "321"}]}]))
    rec = sessions.by_transaction("CP16", res.transaction_id)
    assert [s["energy_wh"] for s in sessions.samples(rec["session_id"])] == [321]
    await c.close()


async def test_stop_with_wallboxes_connected_flushes_samples(site, lists, sessions, clock, events):
    from ocpp_testdata import STATIONS_CFG
    from edge.ocpp_gateway import Gateway
    gw = Gateway(site, STATIONS_CFG, lists, sessions, clock=clock, response_timeout_s=10,
                 on_event=lambda n, b: events.append((n, b)))
    port = await gw.start("127.0.0.1", 0)
    c = await connect(port, "CP16", "1.6", "secret-16")
    res = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1",
                                                  meter_start=0, timestamp=ts(NOW)))
    await c.cp.call(call16.MeterValues(connector_id=1, transaction_id=res.transaction_id,
                                       meter_value=[{"timestamp": ts(NOW + 1),
                                                     "sampled_value": [{"value": "42"}]}]))
    await gw.stop()
    await until(lambda: c.ws.state.name == "CLOSED")
    assert ("station_connected", {"station": "CP16", "connected": False, "version": "1.6"}) \
        in events
    rows = sessions._conn.execute("SELECT energy_wh FROM session_samples").fetchall()
    assert [r[0] for r in rows] == [42]          # queued sample written at shutdown
    await c.close()
