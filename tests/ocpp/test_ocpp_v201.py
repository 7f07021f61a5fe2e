"""OCPP 2.0.1 end to end: the ocpp library's charging station against the real gateway."""
import json

import pytest
from ocpp_testdata import NOW, snapshot
from ocpp.v201 import call
from ocpp_wallbox import connect, ts, tx_event as _tx_event, until

from edge.core.book import GroupBook

PW = "secret-201"


@pytest.mark.parametrize("tag,status,priority", [
    ("STAFF1", "Accepted", 9),                  # prioritised group -> chargingPriority
    ("CARD1", "Accepted", None),                # cards group active at CP201
    ("NOBODY", "Invalid", None),                # unknown here: remote_start_only
    ("BLOCKED1", "Blocked", None),
    ("EXPIRED1", "Expired", None),
    ("ARCH1", "Invalid", None),                 # group_archived
    ("DE-ABC-ROAM1", "NotAtThisTime", None),    # outside_hours
])
async def test_authorize_each_reason(gateway, tag, status, priority):
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    try:
        res = await c.cp.call(call.Authorize(id_token={"id_token": tag, "type": "ISO14443"}))
        assert res.id_token_info["status"] == status
        assert res.id_token_info.get("charging_priority") == priority
    finally:
        await c.close()


async def test_unknown_token_where_no_adhoc(gateway, site, lists):
    """Without an ad hoc group at the station an unknown card is plainly Unknown."""
    snap = snapshot(version=2)
    snap["groups"] = [g for g in snap["groups"] if g["id"] != "g-adhoc"]
    lists.replace(GroupBook.from_snapshot(snap, site, "sync", NOW))
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    res = await c.cp.call(call.Authorize(id_token={"id_token": "NOBODY", "type": "ISO14443"}))
    assert res.id_token_info["status"] == "Unknown"
    await c.close()


async def test_full_transaction(gateway, sessions, outbox, clock):
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    await c.cp.call(call.StatusNotification(timestamp=ts(NOW), connector_status="Occupied",
                                            evse_id=1, connector_id=1))
    assert gateway.station_status()["CP201"]["connectors"][1] == "Occupied"
    # plugged in first: the transaction starts without a token
    r = await c.cp.call(_tx_event("Started", "tx-1", NOW, 0, energy_wh=2000,
                                  trigger="CablePluggedIn"))
    assert r.id_token_info is None
    assert sessions.by_transaction("CP201", "tx-1") is None
    r = await c.cp.call(_tx_event("Updated", "tx-1", NOW + 10, 1, token="STAFF1"))
    assert r.id_token_info["status"] == "Accepted" and r.charging_priority == 9
    rec = sessions.by_transaction("CP201", "tx-1")
    assert rec["started_s"] == NOW and rec["meter_start_wh"] == 2000
    assert rec["group_id"] == "g-staff"
    await c.cp.call(_tx_event("Updated", "tx-1", NOW + 60, 2, energy_wh=2500,
                              currents={"L1": 10.0, "L2": 11.0, "L3": 12.0},
                              trigger="MeterValuePeriodic"))
    live = gateway.live_sessions()
    # wiring L2L3L1: connector L1 is site L2, L2 is site L3, L3 is site L1
    assert live[0]["drawn_da"] == [120, 100, 110] and live[0]["prioritised"] is True
    await c.cp.call(call.MeterValues(evse_id=1, meter_value=[{
        "timestamp": ts(NOW + 90), "sampled_value": [
            {"value": 3, "measurand": "Energy.Active.Import.Register",
             "unit_of_measure": {"unit": "kWh"}}]}]))
    clock.t = NOW + 600
    await c.cp.call(_tx_event("Ended", "tx-1", NOW + 600, 3, energy_wh=4000,
                              reason="EVDisconnected", trigger="EVCommunicationLost"))
    done = sessions.get(rec["session_id"])
    assert done["state"] == "completed" and done["energy_wh"] == 2000
    assert done["stop_reason"] == "EVDisconnected"
    assert done["cost"]["total_m"] == 800
    assert [s["energy_wh"] for s in sessions.samples(rec["session_id"])] == [2500, 3000, 4000]
    assert [r.decoded_body()["state"] for r in outbox.pending(10)] == ["started", "completed"]
    await c.close()


async def test_remote_start_ad_hoc(gateway, sessions):
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    out = await gateway.remote_start("CP201", 1, "pay-77")
    assert out["accepted"] is True
    req = c.cp.calls("RequestStartTransaction")[-1]
    assert req["evse_id"] == 1 and req["id_token"]["id_token"] == out["id_tag"]
    r = await c.cp.call(_tx_event("Started", "tx-r", NOW, 0, token=out["id_tag"],
                                  energy_wh=0, trigger="RemoteStart"))
    assert r.id_token_info["status"] == "Accepted"
    rec = sessions.by_transaction("CP201", "tx-r")
    assert rec["payment_ref"] == "pay-77" and rec["group_id"] == "g-adhoc"
    assert await gateway.remote_stop(rec["session_id"]) is True
    assert c.cp.calls("RequestStopTransaction")[-1]["transaction_id"] == "tx-r"
    await c.close()


async def test_remote_start_rejected_by_wallbox(gateway):
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    c.cp.remote_start_status = "Rejected"
    out = await gateway.remote_start("CP201", 1, "pay-78")
    assert out == {"accepted": False, "reason": "rejected_by_station", "id_tag": None}
    assert gateway.stations["CP201"].pending_remote == {}
    await c.close()


async def test_late_offline_transaction_recorded_once(gateway, sessions, outbox, clock):
    clock.t = NOW + 7200
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    started = _tx_event("Started", "tx-off", NOW, 0, token="STAFF2", energy_wh=100, offline=True)
    r = await c.cp.call(started)
    assert r.id_token_info["status"] == "Accepted"
    await c.cp.call(started)   # queued twice by the wallbox: still one session
    await c.cp.call(_tx_event("Ended", "tx-off", NOW + 900, 1, energy_wh=1100, offline=True,
                              reason="Local"))
    rec = sessions.by_transaction("CP201", "tx-off")
    assert rec["reported_late"] is True and rec["energy_wh"] == 1000
    assert [r.decoded_body()["state"] for r in outbox.pending(10)] == ["started", "completed"]
    await c.close()


async def test_reconnect_mid_transaction(gateway, sessions):
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    await c.cp.call(_tx_event("Started", "tx-2", NOW, 0, token="CARD1", energy_wh=0))
    await c.close()
    await until(lambda: not gateway.station_status()["CP201"]["connected"])
    c = await connect(gateway.port, "CP201", "2.0.1", PW, boot=False)
    await c.cp.call(_tx_event("Ended", "tx-2", NOW + 60, 1, energy_wh=300, reason="Local"))
    rec = sessions.by_transaction("CP201", "tx-2")
    assert rec["state"] == "completed" and rec["energy_wh"] == 300
    await c.close()


async def test_allocation_change_sends_new_profiles(gateway):
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    smax = c.cp.calls("SetChargingProfile")[0]
    assert smax["connector_id"] == 0
    assert smax["profile"]["charging_profile_purpose"] == "ChargingStationMaxProfile"
    assert smax["profile"]["charging_profile_kind"] == "Absolute"
    assert smax["profile"]["charging_schedule"][0]["start_schedule"] == ts(NOW - 86400)
    dflt = c.cp.calls("SetChargingProfile")[1]
    assert dflt["connector_id"] == 0
    assert dflt["profile"]["charging_profile_purpose"] == "TxDefaultProfile"
    assert dflt["profile"]["charging_profile_kind"] == "Relative"
    assert dflt["profile"]["charging_schedule"][0]["charging_schedule_period"] == \
        [{"start_period": 0, "limit": 12.5}]
    await c.cp.call(_tx_event("Started", "tx-3", NOW, 0, token="STAFF1", energy_wh=0))
    assert (await gateway.apply_limits({("CP201", 1): (200, 3)})) == {("CP201", 1): "accepted"}
    p = c.cp.calls("SetChargingProfile")[-1]
    assert p["connector_id"] == 1 and p["profile"]["transaction_id"] == "tx-3"
    assert p["profile"]["charging_profile_kind"] == "Relative"
    sched = p["profile"]["charging_schedule"][0]
    assert "start_schedule" not in sched
    assert sched["charging_rate_unit"] == "A"
    assert sched["charging_schedule_period"][0]["limit"] == 20.0
    assert (await gateway.apply_limits({("CP201", 1): (200, 3)})) == {("CP201", 1): "unchanged"}
    assert (await gateway.apply_limits({("CP201", 1): (60, 1)})) == {("CP201", 1): "accepted"}
    period = c.cp.calls("SetChargingProfile")[-1]["profile"]["charging_schedule"][0][
        "charging_schedule_period"][0]
    assert period == {"start_period": 0, "limit": 6.0, "number_phases": 1}
    await c.close()


async def test_local_list_uses_reported_capacity_and_priority(gateway, lists, site):
    c = await connect(gateway.port, "CP201", "2.0.1", PW, list_max=3)
    assert c.cp.calls("GetReport")   # capacity read from LocalAuthListCtrlr.Entries maxLimit
    assert gateway.station_status()["CP201"]["local_list_max"] == 3
    full = c.cp.calls("SendLocalList")[0]
    assert full["update_type"] == "Full"
    # prioritised staff first, then the cards group; capacity 3
    assert [e["id_token"]["id_token"] for e in full["entries"]] == ["STAFF1", "STAFF2", "CARD1"]
    assert full["entries"][0]["id_token_info"]["charging_priority"] == 9
    assert "charging_priority" not in full["entries"][2]["id_token_info"]
    # a new prioritised token pushes CARD1 out of the small list
    extra = [{"uid": "STAFF0", "groups": ["g-staff"], "status": "valid", "expires_s": None,
              "driver": None, "provider": None}]
    lists.replace(GroupBook.from_snapshot(snapshot(version=2, extra_tokens=extra), site,
                                          "sync", NOW))
    upd = await c.cp.wait_for("SendLocalList", lambda p: p["update_type"] == "Differential")
    got = {e["id_token"]["id_token"]: e.get("id_token_info") for e in upd["entries"]}
    assert got["CARD1"] is None and got["STAFF0"]["status"] == "Accepted"
    assert set(got) == {"CARD1", "STAFF0"}
    assert set(c.cp.local_list) == {"STAFF0", "STAFF1", "STAFF2"}
    await c.close()


async def test_settings_set_with_set_variables(gateway):
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    assert c.cp.config["SampledDataCtrlr.TxUpdatedInterval"] == "30"
    assert c.cp.config["LocalAuthListCtrlr.Enabled"] == "true"
    assert c.cp.config["SampledDataCtrlr.TxStartedMeasurands"] == \
        "Energy.Active.Import.Register"
    assert c.cp.config["SampledDataCtrlr.TxEndedMeasurands"] == "Energy.Active.Import.Register"
    assert gateway.station_status()["CP201"]["settings"]["meter_interval_s"] == "Accepted"
    await c.close()


async def test_data_transfer_is_answered(gateway):
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    res = await c.cp.call(call.DataTransfer(vendor_id="com.example", message_id="m"))
    assert res.status == "UnknownVendorId"
    await c.close()


async def test_clear_and_trigger(gateway):
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    assert await gateway.clear_limits("CP201") is True
    assert c.cp.calls("ClearChargingProfile")[-1] == {
        "charging_profile_id": 101, "charging_profile_criteria": {"evse_id": 1}}
    assert await gateway.trigger("CP201", "MeterValues", 1) is True
    assert c.cp.calls("TriggerMessage")[-1]["requested_message"] == "MeterValues"
    await c.close()


async def test_broken_event_listener_does_not_break_answers(gateway, sessions):
    def listener(name, body):
        raise RuntimeError("listener bug")
    gateway.on_event = listener
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    r = await c.cp.call(_tx_event("Started", "tx-l", NOW, 0, token="STAFF1", energy_wh=0))
    assert r.id_token_info["status"] == "Accepted"
    assert sessions.by_transaction("CP201", "tx-l") is not None
    await c.close()


async def test_plug_in_and_out_without_token(gateway, sessions):
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    await c.cp.call(_tx_event("Started", "tx-p", NOW, 0, energy_wh=500, trigger="CablePluggedIn"))
    await c.cp.call(_tx_event("Ended", "tx-p", NOW + 30, 1, energy_wh=500,
                              reason="EVDisconnected", trigger="EVCommunicationLost"))
    assert sessions.by_transaction("CP201", "tx-p") is None
    assert gateway.stations["CP201"].pending_tx == {}
    # energy that flowed without any token (free vend) is recorded
    await c.cp.call(_tx_event("Started", "tx-f", NOW, 0, energy_wh=500, trigger="CablePluggedIn"))
    await c.cp.call(_tx_event("Ended", "tx-f", NOW + 600, 1, energy_wh=1500, reason="Local"))
    rec = sessions.by_transaction("CP201", "tx-f")
    assert rec["token"] is None and rec["energy_wh"] == 1000 and rec["state"] == "completed"
    await c.close()


async def test_local_list_respects_bytes_per_message(gateway, lists, site):
    from ocpp.charge_point import snake_to_camel_case
    extra = [{"uid": "TOKEN%04d" % i, "groups": ["g-staff"], "status": "valid",
              "expires_s": None, "driver": None, "provider": None} for i in range(20)]
    lists.replace(GroupBook.from_snapshot(snapshot(version=2, extra_tokens=extra), site,
                                          "sync", NOW))
    c = await connect(gateway.port, "CP201", "2.0.1", PW, list_max=30, bytes_per_message=900)
    msgs = c.cp.calls("SendLocalList")
    assert len(msgs) > 1 and msgs[0]["update_type"] == "Full"
    for m in msgs:
        wire = json.dumps(snake_to_camel_case({"versionNumber": m["list_version"],
                                               "updateType": m["update_type"],
                                               "localAuthorizationList": m["entries"]}))
        assert len(wire) <= 900
    assert len(c.cp.local_list) == 23          # 20 extra + STAFF1, STAFF2, CARD1
    await c.close()


async def test_remote_start_matched_by_remote_start_id(gateway, sessions):
    c = await connect(gateway.port, "CP201", "2.0.1", PW)
    out = await gateway.remote_start("CP201", 1, "pay-rsid")
    rid = c.cp.calls("RequestStartTransaction")[-1]["remote_start_id"]
    ev = _tx_event("Started", "tx-rs", NOW, 0, token="WALLBOX-OWN", energy_wh=0,
                   trigger="RemoteStart")
    ev.transaction_info["remote_start_id"] = rid
    r = await c.cp.call(ev)
    assert r.id_token_info["status"] == "Accepted"
    rec = sessions.by_transaction("CP201", "tx-rs")
    assert rec["payment_ref"] == "pay-rsid" and rec["token"] == out["id_tag"]
    await c.close()
