"""Remote start/stop, local list, configuration and triggers, as the server sends them."""
import pytest
from ocpp.v16 import call as c16
from ocpp.v201 import call as c201

from calls import list_version, remote_start, remote_stop, send_list, version_of
from central import Central
from helpers import VERSIONS, fleet_for, spec, starts, statuses, stops, until


@pytest.mark.parametrize("version", VERSIONS)
async def test_remote_start_starts_on_the_named_connector_and_remote_stop_ends_it(version):
    async with Central(tokens={"PAY-1"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, connectors=2)])
        async with fleet:
            await fleet.wait_connected()
            point = await cs.point("CP1")
            assert (await point.call(remote_start(version, "PAY-1", 2))).status == "Accepted"
            await cs.wait_for(lambda: starts(cs, version), "a start")
            (tag, _, connector, _, _), = starts(cs, version)
            assert (tag, connector) == ("PAY-1", 2)
            conn = fleet.connector("CP1", 2)
            assert conn.tx is not None and conn.drawn_a > 0
            if version == "2.0.1":
                started = [p for p in cs.calls("TransactionEvent") if p["event_type"] == "Started"]
                assert started[0]["trigger_reason"] == "RemoteStart"
                assert started[0]["transaction_info"]["remote_start_id"] == 77
            # Busy connector: refused.
            assert (await point.call(remote_start(version, "PAY-1", 2))).status == "Rejected"
            # Unknown transaction: refused.
            assert (await point.call(remote_stop(version, 999999))).status == "Rejected"
            await cs.wait_for(lambda: conn.tx.server_id is not None, "tx numbered")
            assert (await point.call(remote_stop(version, conn.tx.server_id))).status == "Accepted"
            await cs.wait_for(lambda: stops(cs, version), "a stop")
            assert conn.tx is None and conn.drawn_a == 0
        (_, _, reason), = stops(cs, version)
        assert reason == "Remote"


@pytest.mark.parametrize("version", VERSIONS)
async def test_remote_start_uses_a_car_waiting_without_a_tag(version):
    async with Central(tokens={"PAY-2"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version)])
        async with fleet:
            await fleet.wait_connected()
            assert not await fleet.plug_in("CP1", 1, None, need_wh=7000, max_current_a=11)
            conn = fleet.connector("CP1", 1)
            assert conn.state == "Preparing"
            point = await cs.point("CP1")
            res = await point.call(remote_start(version, "PAY-2", 1))
            assert res.status == "Accepted"
            await cs.wait_for(lambda: starts(cs, version), "a start")
            assert conn.drawn_a == 11.0 and conn.ev.need_wh == 7000


@pytest.mark.parametrize("version", VERSIONS)
async def test_local_list_is_kept_versioned_and_bounded(version):
    async with Central() as cs:
        fleet = fleet_for(cs, [spec("CP1", version, local_list_max=3)])
        async with fleet:
            await fleet.wait_connected()
            point = await cs.point("CP1")
            station = fleet.station("CP1")
            assert version_of(version, await point.call(list_version(version))) == 0
            res = await point.call(send_list(version, 3, [("A", "Accepted"), ("B", "Blocked")]))
            assert res.status == "Accepted"
            assert version_of(version, await point.call(list_version(version))) == 3
            assert station.local_list.lookup("B", 0) == "Blocked"
            # Too many for the capacity: fails whole, old list stays.
            res = await point.call(send_list(version, 4, [(u, "Accepted") for u in "WXYZ"]))
            assert res.status == "Failed"
            assert sorted(station.local_list.entries) == ["A", "B"]
            assert version_of(version, await point.call(list_version(version))) == 3
            # A differential update must be newer.
            res = await point.call(send_list(version, 3, [("C", "Accepted")], full=False))
            assert res.status == "VersionMismatch"
            res = await point.call(send_list(version, 5, [("C", "Accepted"), ("A", None)],
                                             full=False))
            assert res.status == "Accepted"
            assert sorted(station.local_list.entries) == ["B", "C"]
            # Differential past the capacity also fails whole.
            res = await point.call(send_list(version, 6, [("D", "Accepted"), ("E", "Accepted")],
                                             full=False))
            assert res.status == "Failed" and len(station.local_list) == 2
            # A Full update must give every entry a status.
            res = await point.call(send_list(version, 7, [("F", None)]))
            assert res.status == "Failed" and station.local_list.version == 5


async def test_v16_configuration_reports_list_capacity_and_guards_keys():
    async with Central() as cs:
        fleet = fleet_for(cs, [spec("CP1", "1.6", local_list_max=25)])
        async with fleet:
            await fleet.wait_connected()
            point = await cs.point("CP1")
            res = await point.call(c16.GetConfiguration(key=["LocalAuthListMaxLength", "Nope"]))
            assert res.configuration_key == [
                {"key": "LocalAuthListMaxLength", "readonly": True, "value": "25"}]
            assert res.unknown_key == ["Nope"]
            full = await point.call(c16.GetConfiguration())
            assert {k["key"] for k in full.configuration_key} >= {
                "HeartbeatInterval", "MeterValueSampleInterval", "SupportedFeatureProfiles"}
            change = lambda k, v: point.call(c16.ChangeConfiguration(key=k, value=v))
            assert (await change("LocalAuthListMaxLength", "99")).status == "Rejected"
            assert (await change("MeterValueSampleInterval", "ten")).status == "Rejected"
            assert (await change("LocalPreAuthorize", "maybe")).status == "Rejected"
            assert (await change("NoSuchKey", "1")).status == "NotSupported"
            assert (await change("MeterValueSampleInterval", " 30 ")).status == "Accepted"
            assert fleet.station("CP1").conf_int("MeterValueSampleInterval") == 30
            assert fleet.station("CP1").conf("LocalAuthListMaxLength") == "25"


async def test_v201_variables_report_entries_and_capacity():
    async with Central() as cs:
        fleet = fleet_for(cs, [spec("CP1", "2.0.1", local_list_max=40)])
        async with fleet:
            await fleet.wait_connected()
            point = await cs.point("CP1")
            await point.call(send_list("2.0.1", 1, [("A", "Accepted"), ("B", "Accepted")]))
            comp = lambda n: {"name": n}
            res = await point.call(c201.GetVariables(get_variable_data=[
                {"component": comp("LocalAuthListCtrlr"), "variable": {"name": "Entries"}},
                {"component": comp("LocalAuthListCtrlr"), "variable": {"name": "ItemsPerMessage"}},
                {"component": comp("LocalAuthListCtrlr"), "variable": {"name": "Bogus"}},
                {"component": comp("NoCtrlr"), "variable": {"name": "Entries"}},
                {"component": comp("LocalAuthListCtrlr"), "variable": {"name": "Entries"},
                 "attribute_type": "Target"}]))
            got = [(r["attribute_status"], r.get("attribute_value")) for r in res.get_variable_result]
            assert got == [("Accepted", "2"), ("Accepted", "25"), ("UnknownVariable", None),
                           ("UnknownComponent", None), ("NotSupportedAttributeType", None)]
            res = await point.call(c201.SetVariables(set_variable_data=[
                {"component": comp("SampledDataCtrlr"), "variable": {"name": "TxUpdatedInterval"},
                 "attribute_value": "15"},
                {"component": comp("LocalAuthListCtrlr"), "variable": {"name": "Entries"},
                 "attribute_value": "9"},
                {"component": comp("OCPPCommCtrlr"), "variable": {"name": "HeartbeatInterval"},
                 "attribute_value": "-3"}]))
            assert [r["attribute_status"] for r in res.set_variable_result] == [
                "Accepted", "Rejected", "Rejected"]
            assert fleet.station("CP1").conf_int("MeterValueSampleInterval") == 15
            assert (await point.call(c201.GetBaseReport(request_id=4, report_base="FullInventory")
                                     )).status == "Accepted"
            report, = await cs.wait_for(lambda: cs.calls("NotifyReport"), "a report")
            # GetReport with a filter reports just that variable.
            res = await point.call(c201.GetReport(request_id=5, component_variable=[
                {"component": comp("LocalAuthListCtrlr"), "variable": {"name": "Entries"}}]))
            assert res.status == "Accepted"
            await cs.wait_for(lambda: len(cs.calls("NotifyReport")) == 2, "a second report")
            res = await point.call(c201.GetReport(request_id=6, component_variable=[
                {"component": comp("NoSuchCtrlr")}]))
            assert res.status == "EmptyResultSet"
        filtered = cs.calls("NotifyReport")[1]
        assert filtered["request_id"] == 5
        assert [(d["variable"]["name"], d["variable_characteristics"]["max_limit"])
                for d in filtered["report_data"]] == [("Entries", 40)]
        entries = [d for d in report["report_data"]
                   if (d["component"]["name"], d["variable"]["name"]) == ("LocalAuthListCtrlr", "Entries")]
        assert entries[0]["variable_characteristics"]["max_limit"] == 40
        assert entries[0]["variable_attribute"][0] == {"type": "Actual", "value": "2",
                                                       "mutability": "ReadOnly"}


@pytest.mark.parametrize("version", VERSIONS)
async def test_trigger_message_resends_status(version):
    async with Central() as cs:
        fleet = fleet_for(cs, [spec("CP1", version, connectors=2)])
        async with fleet:
            await fleet.wait_connected()
            await cs.wait_for(lambda: len(statuses(cs)) == 2, "boot statuses")
            point = await cs.point("CP1")
            if version == "1.6":
                res = await point.call(c16.TriggerMessage(requested_message="StatusNotification",
                                                          connector_id=2))
                bad = await point.call(c16.TriggerMessage(requested_message="StatusNotification",
                                                          connector_id=7))
            else:
                res = await point.call(c201.TriggerMessage(requested_message="StatusNotification",
                                                           evse={"id": 2}))
                bad = await point.call(c201.TriggerMessage(requested_message="StatusNotification",
                                                           evse={"id": 7}))
            assert (res.status, bad.status) == ("Accepted", "Rejected")
            await cs.wait_for(lambda: len(statuses(cs)) == 3, "a triggered status")


@pytest.mark.parametrize("version", VERSIONS)
async def test_remote_start_with_a_tx_profile_charges_at_its_limit(version):
    tx_profile = {"stack_level": 0, "charging_profile_purpose": "TxProfile",
                  "charging_profile_kind": "Relative"}
    sched = {"charging_rate_unit": "A",
             "charging_schedule_period": [{"start_period": 0, "limit": 8}]}
    async with Central(tokens={"PAY"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version)])
        async with fleet:
            await fleet.wait_connected()
            point = await cs.point("CP1")
            if version == "1.6":
                req = c16.RemoteStartTransaction(id_tag="PAY", connector_id=1, charging_profile=dict(
                    tx_profile, charging_profile_id=4, charging_schedule=sched))
            else:
                req = c201.RequestStartTransaction(
                    id_token={"id_token": "PAY", "type": "Central"}, remote_start_id=1, evse_id=1,
                    charging_profile=dict(tx_profile, id=4, charging_schedule=[dict(sched, id=1)]))
            assert (await point.call(req)).status == "Accepted"
            await cs.wait_for(lambda: starts(cs, version), "a start")
            conn = fleet.connector("CP1", 1)
            assert (conn.limit_a, conn.drawn_a) == (8.0, 8.0)
            await cs.wait_for(lambda: conn.tx.server_id is not None, "tx numbered")
            await point.call(remote_stop(version, conn.tx.server_id))
            await cs.wait_for(lambda: stops(cs, version), "a stop")
            assert len(fleet.station("CP1").profiles) == 0   # ended with its session


@pytest.mark.parametrize("validate", [True, False], ids=["schema", "lean"])
@pytest.mark.parametrize("version", VERSIONS)
async def test_malformed_requests_get_errors_and_the_station_keeps_working(version, validate):
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version)], validate_schema=validate)
        async with fleet:
            await fleet.wait_connected()
            point = await cs.point("CP1")
            if version == "1.6":
                bad = c16.SendLocalList(list_version=1, update_type="Full",
                                        local_authorization_list=[{"idTagInfo": {}}])
            else:
                bad = c201.SendLocalList(version_number=1, update_type="Full",
                                         local_authorization_list=[{"id_token_info": {}}])
            if validate:
                # The library's schema check answers with a CallError.
                with pytest.raises(Exception) as err:
                    await point.call(bad, suppress=False, skip_schema_validation=True)
                assert type(err.value).__name__ in (
                    "FormatViolationError", "FormationViolationError", "ProtocolError",
                    "TypeConstraintViolationError", "OccurrenceConstraintViolationError")
            else:
                # Without schema checks the simulator's own check refuses the update.
                res = await point.call(bad, suppress=False, skip_schema_validation=True)
                assert res.status == "Failed"
            assert fleet.station("CP1").local_list.version == 0
            res = await point.call(send_list(version, 2, [("T", "Accepted")]))
            assert res.status == "Accepted"
            assert await fleet.plug_in("CP1", 1, "T", need_wh=5000, max_current_a=16)


@pytest.mark.parametrize("version", VERSIONS)
async def test_remote_start_authorizes_first_when_configured(version):
    async with Central(tokens={"GOOD"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, connectors=2)])
        async with fleet:
            await fleet.wait_connected()
            point = await cs.point("CP1")
            if version == "1.6":
                status = (await point.call(c16.ChangeConfiguration(
                    key="AuthorizeRemoteTxRequests", value="true"))).status
            else:
                status = (await point.call(c201.SetVariables(set_variable_data=[{
                    "component": {"name": "AuthCtrlr"},
                    "variable": {"name": "AuthorizeRemoteStart"}, "attribute_value": "true"}]))
                          ).set_variable_result[0]["attribute_status"]
            assert status == "Accepted"
            assert (await point.call(remote_start(version, "BAD", 1))).status == "Accepted"
            assert (await point.call(remote_start(version, "GOOD", 2))).status == "Accepted"
            await cs.wait_for(lambda: starts(cs, version), "a start")
            await cs.wait_for(lambda: len(cs.calls("Authorize")) == 2, "two authorizations")
            station = fleet.station("CP1")
            await until(lambda: station.connectors[1].ev is None, "assumed car gone")
            assert station.connectors[1].tx is None
        assert [s[0] for s in starts(cs, version)] == ["GOOD"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_triggered_meter_values_are_marked_as_triggered(version):
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version)])
        async with fleet:
            await fleet.wait_connected()
            assert await fleet.plug_in("CP1", 1, "T", need_wh=9000, max_current_a=16)
            point = await cs.point("CP1")
            if version == "1.6":
                res = await point.call(c16.TriggerMessage(requested_message="MeterValues",
                                                          connector_id=1))
            else:
                res = await point.call(c201.TriggerMessage(requested_message="MeterValues",
                                                           evse={"id": 1}))
            assert res.status == "Accepted"
            if version == "1.6":
                got = await cs.wait_for(lambda: cs.calls("MeterValues"), "meter values")
                values = got[0]["meter_value"][0]["sampled_value"]
            else:
                got = await cs.wait_for(lambda: [e for e in cs.calls("TransactionEvent")
                                                 if e["event_type"] == "Updated"], "an update")
                assert got[0]["trigger_reason"] == "Trigger"
                values = got[0]["meter_value"][0]["sampled_value"]
        assert {v["context"] for v in values} == {"Trigger"}
        assert [float(v["value"]) for v in values if v["measurand"] == "Current.Import"] == [16.0] * 3


@pytest.mark.parametrize("version", VERSIONS)
async def test_reset_ends_sessions_and_boots_again(version):
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version)])
        async with fleet:
            await fleet.wait_connected()
            assert await fleet.plug_in("CP1", 1, "T", need_wh=9000, max_current_a=16)
            await cs.wait_for(lambda: starts(cs, version), "a start")
            point = await cs.point("CP1")
            if version == "2.0.1":
                idle_only = await point.call(c201.Reset(type="OnIdle"))
                assert idle_only.status == "Rejected"
                res = await point.call(c201.Reset(type="Immediate"))
            else:
                res = await point.call(c16.Reset(type="Hard"))
            assert res.status == "Accepted"
            await cs.wait_for(lambda: len(cs.calls("BootNotification")) == 2, "a second boot")
            await cs.wait_for(lambda: stops(cs, version), "the stop")
            conn = fleet.connector("CP1", 1)
            assert conn.tx is None and conn.ev is not None and fleet.links["CP1"].boots == 2
        (_, _, reason), = stops(cs, version)
        assert reason == ("HardReset" if version == "1.6" else "ImmediateReset")
        if version == "2.0.1":
            assert [b["reason"] for b in cs.calls("BootNotification")] == ["PowerUp", "RemoteReset"]


def _availability(version, connector, operative):
    kind = "Operative" if operative else "Inoperative"
    if version == "1.6":
        return c16.ChangeAvailability(connector_id=connector, type=kind)
    return c201.ChangeAvailability(operational_status=kind,
                                   evse=None if connector == 0 else {"id": connector})


@pytest.mark.parametrize("version", VERSIONS)
async def test_change_availability_takes_connectors_out_of_service(version):
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version, connectors=2)])
        async with fleet:
            await fleet.wait_connected()
            assert await fleet.plug_in("CP1", 2, "T", need_wh=9000, max_current_a=16)
            point = await cs.point("CP1")
            one, two = fleet.connector("CP1", 1), fleet.connector("CP1", 2)
            assert (await point.call(_availability(version, 1, False))).status == "Accepted"
            assert one.state == "Unavailable"
            assert not await fleet.plug_in("CP1", 1, "T", need_wh=9000, max_current_a=16)
            assert one.tx is None and one.state == "Unavailable"
            assert (await point.call(remote_start(version, "T", 1))).status == "Rejected"
            # Busy connector: after its session.
            assert (await point.call(_availability(version, 2, False))).status == "Scheduled"
            assert two.state == "Charging"
            fleet.unplug("CP1", 2)
            assert two.state == "Unavailable"
            assert (await point.call(_availability(version, 9, False))).status == "Rejected"
            assert (await point.call(_availability(version, 0, True))).status == "Accepted"
            assert (one.state, two.state) == ("Preparing", "Available")
            await cs.wait_for(lambda: statuses(cs)[-2:] == (
                ["Preparing", "Available"] if version == "1.6" else ["Occupied", "Available"]),
                "statuses sent")


@pytest.mark.parametrize("version", VERSIONS)
async def test_unlock_connector(version):
    async with Central(tokens={"T"}) as cs:
        fleet = fleet_for(cs, [spec("CP1", version)])
        async with fleet:
            await fleet.wait_connected()
            assert await fleet.plug_in("CP1", 1, "T", need_wh=9000, max_current_a=16)
            point = await cs.point("CP1")
            conn = fleet.connector("CP1", 1)
            if version == "1.6":
                assert (await point.call(c16.UnlockConnector(connector_id=4))).status == \
                    "UnlockFailed"
                assert (await point.call(c16.UnlockConnector(connector_id=1))).status == "Unlocked"
                await cs.wait_for(lambda: stops(cs, version), "the stop")
                assert stops(cs, version)[0][2] == "UnlockCommand" and conn.tx is None
            else:
                unlock = lambda e: point.call(c201.UnlockConnector(evse_id=e, connector_id=1))
                assert (await unlock(4)).status == "UnknownConnector"
                assert (await unlock(1)).status == "OngoingAuthorizedTransaction"
                assert conn.tx is not None
                fleet.unplug("CP1", 1)
                assert (await unlock(1)).status == "Unlocked"
