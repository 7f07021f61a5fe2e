"""OCPP 1.6J end to end: the ocpp library's charge point against the real gateway."""
import asyncio
from decimal import Decimal

import pytest
import websockets
from ocpp_testdata import NOW, snapshot
from ocpp.routing import on
from ocpp.v16 import call
from ocpp.v16 import call_result as res16
from ocpp.v16.enums import Action as A16
from ocpp_wallbox import Wallbox16, basic, connect, ts, until

from edge.core.book import GroupBook

PW = "secret-16"


async def _authorize(cp, tag):
    res = await cp.call(call.Authorize(id_tag=tag))
    return res.id_tag_info["status"]


@pytest.mark.parametrize("tag,status", [
    ("STAFF1", "Accepted"),          # accepted (prioritised group, whole site)
    ("staff1", "Accepted"),          # uids compare without case
    ("NOBODY", "Invalid"),           # unknown token (ad hoc here: remote start only)
    ("BLOCKED1", "Blocked"),         # token_blocked
    ("EXPIRED1", "Expired"),         # token_expired
    ("ARCH1", "Invalid"),            # group_archived
    ("CARD1", "Invalid"),            # not_active_here (cards group only at CP201)
    ("DE-ABC-ROAM1", "Invalid"),     # outside_hours (eRoaming window closed)
])
async def test_authorize_each_reason(gateway, tag, status):
    c = await connect(gateway.port, "CP16", "1.6", PW)
    try:
        assert await _authorize(c.cp, tag) == status
    finally:
        await c.close()


async def test_denial_reasons_reach_logic(gateway):
    """The wire collapses reasons to Invalid; the decision keeps the exact reason."""
    st = gateway.stations["CP16"]
    got = {t: (await gateway.logic.authorize(st, t, None)).reason
           for t in ("NOBODY", "BLOCKED1", "EXPIRED1", "ARCH1", "CARD1", "DE-ABC-ROAM1")}
    assert got == {"NOBODY": "remote_start_only", "BLOCKED1": "token_blocked",
                   "EXPIRED1": "token_expired", "ARCH1": "group_archived",
                   "CARD1": "not_active_here", "DE-ABC-ROAM1": "outside_hours"}


async def test_full_transaction_with_meter_values(gateway, sessions, outbox, events, clock):
    c = await connect(gateway.port, "CP16", "1.6", PW)
    cp = c.cp
    await cp.call(call.StatusNotification(connector_id=1, error_code="NoError",
                                          status="Preparing"))
    assert gateway.station_status()["CP16"]["connectors"][1] == "Preparing"
    assert gateway.station_status()["CP16"]["connector_errors"][1] is None
    await cp.call(call.StatusNotification(connector_id=2, error_code="GroundFailure",
                                          status="Faulted"))
    assert gateway.station_status()["CP16"]["connector_errors"][2] == "GroundFailure"
    res = await cp.call(call.StartTransaction(connector_id=1, id_tag="STAFF1", meter_start=1000,
                                              timestamp=ts(NOW)))
    assert res.id_tag_info["status"] == "Accepted"
    tx = res.transaction_id
    rec = sessions.by_transaction("CP16", tx)
    assert rec["state"] == "started" and rec["group_id"] == "g-staff"
    assert rec["tariff"]["energy_m_per_kwh"] == 400 and rec["token"] == "STAFF1"

    await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{
        "timestamp": ts(NOW + 60), "sampled_value": [
            {"value": "1.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
            {"value": "15.9", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
            {"value": "16.0", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
            {"value": "15.1", "measurand": "Current.Import", "phase": "L3", "unit": "A"}]}]))
    live = gateway.live_sessions()
    assert len(live) == 1
    assert live[0]["key"] == ("CP16", 1) and live[0]["drawn_da"] == [159, 160, 151]
    assert live[0]["prioritised"] is True and live[0]["controllable"] is True
    assert live[0]["phases"] == 3
    assert sessions.samples(rec["session_id"])[0]["energy_wh"] == 1500

    clock.t = NOW + 3600
    res = await cp.call(call.StopTransaction(meter_stop=11000, timestamp=ts(NOW + 3600),
                                             transaction_id=tx, reason="EVDisconnected",
                                             id_tag="STAFF1"))
    assert res.id_tag_info["status"] == "Accepted"
    done = sessions.get(rec["session_id"])
    assert done["state"] == "completed" and done["energy_wh"] == 10000
    assert done["stop_reason"] == "EVDisconnected" and done["stopped_s"] == NOW + 3600
    assert done["cost"] == {"energy_m": 4000, "parking_m": 0, "total_m": 4000}
    assert gateway.live_sessions() == []
    # started + completed both queued upstream, in order
    bodies = [r.decoded_body() for r in outbox.pending(10)]
    assert [b["state"] for b in bodies] == ["started", "completed"]
    names = [n for n, _ in events]
    assert "session_started" in names and "session_stopped" in names and "status" in names
    await c.close()


async def test_single_phase_connector_maps_to_its_site_phase(gateway):
    c = await connect(gateway.port, "CP16", "1.6", PW)
    res = await c.cp.call(call.StartTransaction(connector_id=2, id_tag="STAFF1", meter_start=0,
                                                timestamp=ts(NOW)))
    await c.cp.call(call.MeterValues(connector_id=2, transaction_id=res.transaction_id,
                                     meter_value=[{"timestamp": ts(NOW + 5), "sampled_value": [
                                         {"value": "9.6", "measurand": "Current.Import",
                                          "unit": "A"}]}]))
    live = gateway.live_sessions()
    assert live[0]["key"] == ("CP16", 2) and live[0]["drawn_da"] == [0, 96, 0]
    assert live[0]["drawn_at_s"] == NOW + 5
    await c.close()


async def test_an_older_sample_replayed_late_does_not_hide_the_newer_one(gateway):
    """The allocation judges a car by its newest sample and when it was taken."""
    c = await connect(gateway.port, "CP16", "1.6", PW)
    res = await c.cp.call(call.StartTransaction(connector_id=2, id_tag="STAFF1", meter_start=0,
                                                timestamp=ts(NOW)))

    async def sample(at, amps):
        await c.cp.call(call.MeterValues(connector_id=2, transaction_id=res.transaction_id,
                                         meter_value=[{"timestamp": ts(at), "sampled_value": [
                                             {"value": amps, "measurand": "Current.Import",
                                              "unit": "A"}]}]))
    await sample(NOW + 20, "12.0")
    await sample(NOW + 10, "6.0")
    live = gateway.live_sessions()
    assert live[0]["drawn_da"] == [0, 120, 0] and live[0]["drawn_at_s"] == NOW + 20
    await sample(NOW + 30, "7.5")
    live = gateway.live_sessions()
    assert live[0]["drawn_da"] == [0, 75, 0] and live[0]["drawn_at_s"] == NOW + 30
    await c.close()


async def test_remote_start_ad_hoc(gateway, sessions):
    c = await connect(gateway.port, "CP16", "1.6", PW)
    out = await gateway.remote_start("CP16", 2, "pay-123")
    assert out["accepted"] is True
    req = c.cp.calls("RemoteStartTransaction")[-1]
    assert req["connector_id"] == 2 and req["id_tag"] == out["id_tag"]
    assert len(req["id_tag"]) <= 20
    # the wallbox may authorize the remote tag first; the edge knows it
    assert (await c.cp.call(call.Authorize(id_tag=out["id_tag"]))).id_tag_info["status"] == \
        "Accepted"
    res = await c.cp.call(call.StartTransaction(connector_id=2, id_tag=out["id_tag"],
                                                meter_start=50, timestamp=ts(NOW)))
    assert res.id_tag_info["status"] == "Accepted"
    rec = sessions.by_transaction("CP16", res.transaction_id)
    assert rec["payment_ref"] == "pay-123" and rec["group_id"] == "g-adhoc"
    # remote stop goes to the wallbox with the right transaction id
    assert await gateway.remote_stop(rec["session_id"]) is True
    assert c.cp.calls("RemoteStopTransaction")[-1]["transaction_id"] == res.transaction_id
    await c.close()


async def test_remote_start_refused_where_no_adhoc_group(gateway):
    c = await connect(gateway.port, "CP16", "1.6", PW)
    out = await gateway.remote_start("CP16", 1, "pay-9")
    assert out["accepted"] is False and out["reason"] == "not_active_here"
    assert c.cp.calls("RemoteStartTransaction") == []
    await c.close()


async def test_late_offline_transaction_recorded_once(gateway, sessions, outbox, clock):
    """A wallbox that authorized from its local list while the edge was unreachable
    reports start and stop late; the retransmitted start after a lost answer must not
    create a second session."""
    clock.t = NOW + 7200
    c = await connect(gateway.port, "CP16", "1.6", PW)
    start = call.StartTransaction(connector_id=1, id_tag="STAFF2", meter_start=500,
                                  timestamp=ts(NOW))
    r1 = await c.cp.call(start)
    await c.close()
    c = await connect(gateway.port, "CP16", "1.6", PW)
    r2 = await c.cp.call(start)          # new message id, same transaction
    assert r1.transaction_id == r2.transaction_id
    assert r1.id_tag_info["status"] == "Accepted"
    await c.cp.call(call.StopTransaction(meter_stop=4500, timestamp=ts(NOW + 1800),
                                         transaction_id=r1.transaction_id, reason="Local"))
    await c.cp.call(call.StopTransaction(meter_stop=4500, timestamp=ts(NOW + 1800),
                                         transaction_id=r1.transaction_id, reason="Local"))
    rec = sessions.by_transaction("CP16", r1.transaction_id)
    assert rec["reported_late"] is True and rec["started_s"] == NOW
    assert rec["state"] == "completed" and rec["energy_wh"] == 4000
    kinds = [(r.kind, r.decoded_body()["state"]) for r in outbox.pending(10)]
    assert kinds == [("session", "started"), ("session", "completed")]
    await c.close()


async def test_reconnect_mid_transaction_continues(gateway, sessions):
    c = await connect(gateway.port, "CP16", "1.6", PW)
    res = await c.cp.call(call.StartTransaction(connector_id=1, id_tag="STAFF1", meter_start=0,
                                                timestamp=ts(NOW)))
    tx = res.transaction_id
    await c.close()
    await until(lambda: not gateway.station_status()["CP16"]["connected"])
    assert gateway.live_sessions()[0]["controllable"] is False   # cannot be told a limit
    # the wallbox comes back without rebooting (no BootNotification) and carries on
    c = await connect(gateway.port, "CP16", "1.6", PW, boot=False)
    await c.cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{
        "timestamp": ts(NOW + 30), "sampled_value": [{"value": "700"}]}]))
    await c.cp.call(call.StopTransaction(meter_stop=900, timestamp=ts(NOW + 60),
                                         transaction_id=tx))
    recs = [r for r in sessions.open_sessions()] + [sessions.by_transaction("CP16", tx)]
    assert recs[-1]["state"] == "completed" and recs[-1]["energy_wh"] == 900
    assert len(sessions.open_sessions()) == 0
    assert [s["energy_wh"] for s in sessions.samples(recs[-1]["session_id"])] == [700]
    await c.close()


async def test_allocation_change_sends_new_profiles_once(gateway):
    c = await connect(gateway.port, "CP16", "1.6", PW)
    # boot sent the station-wide maximum (fallback while the edge is away)
    smax = c.cp.calls("SetChargingProfile")[0]
    assert smax["connector_id"] == 0
    assert smax["profile"]["charging_profile_purpose"] == "ChargePointMaxProfile"
    assert smax["profile"]["charging_schedule"]["charging_schedule_period"][0]["limit"] == 32
    assert smax["profile"]["charging_profile_kind"] == "Absolute"
    assert smax["profile"]["charging_schedule"]["start_schedule"] == ts(NOW - 86400)
    # fallback for transactions without a TxProfile (e.g. while the edge is gone):
    # grid 62 A usable / 4 connectors = 15.5, group 50 A / 4 = 12.5, station 32 A / 2 = 16
    dflt = c.cp.calls("SetChargingProfile")[1]
    assert dflt["connector_id"] == 0
    assert dflt["profile"]["charging_profile_purpose"] == "TxDefaultProfile"
    assert dflt["profile"]["charging_schedule"]["charging_schedule_period"][0]["limit"] == \
        Decimal("12.5")
    res = await c.cp.call(call.StartTransaction(connector_id=1, id_tag="STAFF1", meter_start=0,
                                                timestamp=ts(NOW)))
    out = await gateway.apply_limits({("CP16", 1): (160, 3), ("CP16", 2): (60, 1)})
    assert out == {("CP16", 1): "accepted", ("CP16", 2): "no_transaction"}
    p = c.cp.calls("SetChargingProfile")[-1]
    assert p["connector_id"] == 1
    assert p["profile"]["transaction_id"] == res.transaction_id
    assert p["profile"]["charging_profile_purpose"] == "TxProfile"
    # no dependence on the wallbox's clock: relative to the transaction start
    assert p["profile"]["charging_profile_kind"] == "Relative"
    assert "start_schedule" not in p["profile"]["charging_schedule"]
    period = p["profile"]["charging_schedule"]["charging_schedule_period"][0]
    assert period["limit"] == 16 and period["number_phases"] == 3
    n = len(c.cp.calls("SetChargingProfile"))
    assert (await gateway.apply_limits({("CP16", 1): (160, 3)})) == {("CP16", 1): "unchanged"}
    assert len(c.cp.calls("SetChargingProfile")) == n
    assert (await gateway.apply_limits({("CP16", 1): (103, 3)})) == {("CP16", 1): "accepted"}
    period = c.cp.calls("SetChargingProfile")[-1]["profile"]["charging_schedule"][
        "charging_schedule_period"][0]
    assert period["limit"] == Decimal("10.3")   # the library parses 1.6 limits as Decimal
    await c.close()


async def test_wallbox_rejecting_profiles_is_uncontrollable(gateway):
    c = await connect(gateway.port, "CP16", "1.6", PW, profile_status="Rejected")
    await c.cp.call(call.StartTransaction(connector_id=1, id_tag="STAFF1", meter_start=0,
                                          timestamp=ts(NOW)))
    assert (await gateway.apply_limits({("CP16", 1): (100, 3)})) == {("CP16", 1): "rejected"}
    assert gateway.live_sessions()[0]["controllable"] is False
    await c.close()


async def test_local_list_pushed_then_updated_differentially(gateway, lists, site):
    c = await connect(gateway.port, "CP16", "1.6", PW, list_max=2)
    first = c.cp.calls("SendLocalList")
    assert len(first) == 1 and first[0]["update_type"] == "Full"
    # capacity 2: only the prioritised staff tokens fit (CARD1 is not valid at CP16)
    assert set(c.cp.local_list) == {"STAFF1", "STAFF2"}
    assert gateway.station_status()["CP16"]["local_list_max"] == 2
    # the cloud blocks STAFF2: the wallbox gets a differential update removing it
    snap = snapshot(version=2)
    for t in snap["tokens"]:
        if t["uid"] == "STAFF2":
            t["status"] = "blocked"
    lists.replace(GroupBook.from_snapshot(snap, site, "sync", NOW))
    upd = await c.cp.wait_for("SendLocalList", lambda p: p["update_type"] == "Differential")
    assert upd["entries"] == [{"id_tag": "STAFF2"}]
    assert set(c.cp.local_list) == {"STAFF1"}
    assert upd["list_version"] == first[0]["list_version"] + 1
    await c.close()


async def test_settings_the_edge_relies_on_are_set(gateway):
    c = await connect(gateway.port, "CP16", "1.6", PW)
    assert c.cp.config["MeterValueSampleInterval"] == "30"
    assert c.cp.config["LocalAuthListEnabled"] == "true"
    assert "Current.Import" in c.cp.config["MeterValuesSampledData"]
    assert c.cp.calls("TriggerMessage")[0]["requested_message"] == "StatusNotification"
    assert await gateway.trigger("CP16", "MeterValues", 1) is True
    await c.close()


async def test_data_transfer_is_answered(gateway):
    c = await connect(gateway.port, "CP16", "1.6", PW)
    res = await c.cp.call(call.DataTransfer(vendor_id="com.example", message_id="x", data="{}"))
    assert res.status == "UnknownVendorId"
    res = await c.cp.call(call.Heartbeat())
    assert res.current_time.startswith("2025-06-02T06:00")
    await c.close()


class _ForgetfulWallbox(Wallbox16):
    """Answers the first Differential with VersionMismatch (it lost its list)."""
    mismatched = False

    @on(A16.send_local_list)
    def on_send_local_list(self, list_version, update_type, local_authorization_list=None):
        if update_type == "Differential" and not self.mismatched:
            self.mismatched = True
            self._record("SendLocalList", {"list_version": list_version,
                                           "update_type": update_type, "entries": []})
            return res16.SendLocalList(status="VersionMismatch")
        return Wallbox16.on_send_local_list(self, list_version, update_type,
                                            local_authorization_list)


async def test_version_mismatch_recovers_with_full_update(gateway, lists, site):
    ws = await websockets.connect("ws://127.0.0.1:%d/CP16" % gateway.port,
                                  subprotocols=["ocpp1.6"],
                                  additional_headers=basic("CP16", PW), proxy=None)
    cp = _ForgetfulWallbox("CP16", ws)
    task = asyncio.ensure_future(cp.start())
    await cp.boot()
    await cp.wait_for("TriggerMessage")
    snap = snapshot(version=2)
    snap["tokens"] = [t for t in snap["tokens"] if t["uid"] != "STAFF2"]
    statuses = await _replace_and_sync(gateway, lists, GroupBook.from_snapshot(snap, site,
                                                                               "sync", NOW))
    assert statuses == ["VersionMismatch", "Accepted"]
    assert [c["update_type"] for c in cp.calls("SendLocalList")] == \
        ["Full", "Differential", "Full"]
    assert set(cp.local_list) == {"STAFF1"}
    await ws.close()
    task.cancel()


async def _replace_and_sync(gateway, lists, book):
    """Swap the book without the automatic sync, then sync and return the statuses."""
    unsub = gateway._unsubscribe
    unsub()
    lists.replace(book)
    return await gateway.sync_local_list(gateway.stations["CP16"])


async def test_late_start_with_token_not_on_the_list_gets_real_status(gateway, sessions, clock):
    clock.t = NOW + 7200
    c = await connect(gateway.port, "CP16", "1.6", PW)
    res = await c.cp.call(call.StartTransaction(connector_id=1, id_tag="BLOCKED1",
                                                meter_start=0, timestamp=ts(NOW)))
    assert res.id_tag_info["status"] == "Blocked"          # stops if still running
    rec = sessions.by_transaction("CP16", res.transaction_id)
    assert rec["reported_late"] is True                    # but recorded all the same
    await c.close()


async def test_slow_wallbox_clock_is_not_late(gateway, sessions, clock):
    c = await connect(gateway.port, "CP16", "1.6", PW)
    clock.t = NOW + 3600             # connected an hour ago; its clock is 5 min behind
    res = await c.cp.call(call.StartTransaction(connector_id=1, id_tag="NOBODY",
                                                meter_start=0, timestamp=ts(NOW + 3300)))
    assert res.id_tag_info["status"] == "Invalid"
    assert sessions.by_transaction("CP16", res.transaction_id)["reported_late"] is False
    await c.close()


async def test_list_changes_while_away_reach_the_wallbox_on_reconnect(gateway, lists, site):
    c = await connect(gateway.port, "CP16", "1.6", PW)
    assert set(c.cp.local_list) == {"STAFF1", "STAFF2"}
    held = dict(c.cp.local_list), c.cp.list_version_held
    await c.close()
    await until(lambda: not gateway.station_status()["CP16"]["connected"])
    snap = snapshot(version=2)
    snap["tokens"] = [t for t in snap["tokens"] if t["uid"] != "STAFF2"]
    lists.replace(GroupBook.from_snapshot(snap, site, "sync", NOW))   # while it is away
    c = await connect(gateway.port, "CP16", "1.6", PW, boot=False)
    c.cp.local_list, c.cp.list_version_held = held                  # same wallbox memory
    await c.cp.call(call.Heartbeat())
    upd = await c.cp.wait_for("SendLocalList")
    assert upd["update_type"] == "Differential" and upd["entries"] == [{"id_tag": "STAFF2"}]
    await c.close()


class _PickyWallbox(Wallbox16):
    @on(A16.change_configuration)
    def on_change_configuration(self, key, value):
        self._record("ChangeConfiguration", {"key": key, "value": value})
        return res16.ChangeConfiguration(
            status="NotSupported" if key == "MeterValuesSampledData" else "Accepted")


async def test_refused_setting_is_reported(gateway, caplog):
    ws = await websockets.connect("ws://127.0.0.1:%d/CP16" % gateway.port,
                                  subprotocols=["ocpp1.6"],
                                  additional_headers=basic("CP16", PW), proxy=None)
    cp = _PickyWallbox("CP16", ws)
    task = asyncio.ensure_future(cp.start())
    await cp.boot()
    await cp.wait_for("TriggerMessage")
    settings = gateway.station_status()["CP16"]["settings"]
    assert settings["measurands"] == "NotSupported" and settings["meter_interval_s"] == "Accepted"
    assert any("refused settings: measurands=NotSupported" in r.getMessage()
               for r in caplog.records)
    await ws.close()
    task.cancel()
