"""A start the edge refuses does not charge: the wallbox is told, stopped, capped at 0 A,
and the session is recorded as refused (no group, no tariff, not in the allocation)."""
from ocpp.v16 import call as call16
from ocpp_testdata import NOW, TARIFF, snapshot
from ocpp_wallbox import connect, ts, tx_event

from edge.core.book import GroupBook


def _only_on_connector_1(site):
    snap = snapshot(version=2)
    snap["groups"].append({"id": "g-c1", "name": "c1", "kind": "drivers",
                           "billing": "automatic", "tariff": TARIFF,
                           "active_on": {"connectors": [["CP16", 1]]},
                           "prioritised": True, "state": "active"})
    snap["tokens"].append({"uid": "C1ONLY", "groups": ["g-c1"], "status": "valid",
                           "expires_s": None, "driver": None, "provider": None})
    return GroupBook.from_snapshot(snap, site, "sync", NOW)


def _tx_profiles(cp, tx):
    return [p["profile"] for p in cp.calls("SetChargingProfile")
            if p["profile"].get("transaction_id") in (tx, str(tx))]


async def test_v16_refused_start_is_stopped_capped_and_recorded_as_refused(
        gateway, lists, site, sessions):
    lists.replace(_only_on_connector_1(site))
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    cp = c.cp
    assert cp.config["StopTransactionOnInvalidId"] == "true"
    # Authorize names no connector: the token is good somewhere on this station
    res = await cp.call(call16.Authorize(id_tag="C1ONLY"))
    assert res.id_tag_info["status"] == "Accepted"
    res = await cp.call(call16.StartTransaction(connector_id=2, id_tag="C1ONLY",
                                                meter_start=500, timestamp=ts(NOW)))
    assert res.id_tag_info["status"] == "Invalid"
    tx = res.transaction_id
    # this wallbox ignores StopTransactionOnInvalidId and keeps charging
    await cp.call(call16.MeterValues(connector_id=2, transaction_id=tx, meter_value=[{
        "timestamp": ts(NOW + 10), "sampled_value": [
            {"value": "700", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "16", "measurand": "Current.Import", "phase": "L1", "unit": "A"}]}]))
    stop = await cp.wait_for("RemoteStopTransaction")
    assert stop["transaction_id"] == tx
    capped = _tx_profiles(cp, tx)
    assert capped and all(p["charging_schedule"]["charging_schedule_period"][0]["limit"] == 0
                          for p in capped)
    rec = sessions.by_transaction("CP16", tx)
    assert rec["refused"] == "not_active_here"
    assert rec["group_id"] is None and rec["tariff"] is None
    assert sessions.count_by_group("g-c1") == 0
    # the allocation never sees it, and whatever it allocates there, 0 A is what is sent
    assert gateway.live_sessions() == []
    await gateway.apply_limits({("CP16", 2): (160, 1)})
    assert all(p["charging_schedule"]["charging_schedule_period"][0]["limit"] == 0
               for p in _tx_profiles(cp, tx))
    await cp.call(call16.StopTransaction(meter_stop=900, timestamp=ts(NOW + 20),
                                         transaction_id=tx, reason="Remote"))
    done = sessions.by_transaction("CP16", tx)
    assert done["state"] == "completed" and done["energy_wh"] == 400
    assert done["refused"] == "not_active_here" and done["cost"] is None
    # the accepted connector still charges through its group
    res = await cp.call(call16.StartTransaction(connector_id=1, id_tag="C1ONLY",
                                                meter_start=0, timestamp=ts(NOW + 30)))
    assert res.id_tag_info["status"] == "Accepted"
    ok = sessions.by_transaction("CP16", res.transaction_id)
    assert ok["refused"] is None and ok["group_id"] == "g-c1"
    assert sessions.count_by_group("g-c1") == 1
    await c.close()


async def test_v201_refused_start_is_stopped_capped_and_recorded_as_refused(gateway, sessions):
    c = await connect(gateway.port, "CP201", "2.0.1", "secret-201")
    cp = c.cp
    assert cp.config["TxCtrlr.StopTxOnInvalidId"] == "true"
    res = await cp.call(tx_event("Started", "T-BAD", NOW, 0, token="BLOCKED1", energy_wh=100))
    assert res.id_token_info["status"] == "Blocked"
    # keeps charging regardless
    await cp.call(tx_event("Updated", "T-BAD", NOW + 10, 1, energy_wh=300,
                           currents={"L1": 16}, trigger="MeterValuePeriodic"))
    stop = await cp.wait_for("RequestStopTransaction")
    assert stop["transaction_id"] == "T-BAD"
    capped = _tx_profiles(cp, "T-BAD")
    assert capped and all(p["charging_schedule"][0]["charging_schedule_period"][0]["limit"] == 0
                          for p in capped)
    rec = sessions.by_transaction("CP201", "T-BAD")
    assert rec["refused"] == "token_blocked" and rec["group_id"] is None
    assert gateway.live_sessions() == []
    await cp.call(tx_event("Ended", "T-BAD", NOW + 20, 2, energy_wh=350, reason="Remote",
                           trigger="RemoteStop"))
    done = sessions.by_transaction("CP201", "T-BAD")
    assert done["state"] == "completed" and done["energy_wh"] == 250 and done["cost"] is None
    await c.close()
