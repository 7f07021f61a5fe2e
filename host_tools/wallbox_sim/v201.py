"""OCPP 2.0.1 face of a simulated wallbox. Each connector is EVSE n, connector 1."""
from __future__ import annotations

import json
import logging

from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result

from . import config as cfg
from .clock import iso
from .local_list import ListError, entry_from_info
from .model import Record
from .point_base import SimPoint
from .profiles import PURPOSES_201, ProfileError, parse_v201

log = logging.getLogger(__name__)

CONNECTOR_STATUS = {"Available": "Available", "Unavailable": "Unavailable",
                    "Faulted": "Faulted"}  # everything else: Occupied
CHARGING_STATE = {"Charging": "Charging", "SuspendedEV": "SuspendedEV",
                  "SuspendedEVSE": "SuspendedEVSE", "Preparing": "EVConnected",
                  "Finishing": "EVConnected"}
STOP_TRIGGER = {"EVDisconnected": "EVDeparted", "Remote": "RemoteStop",
                "DeAuthorized": "Deauthorized", "Local": "StopAuthorized",
                "ImmediateReset": "ResetCommand"}


def sampled_values(data: dict, context: str, wanted: str) -> list[dict]:
    want = set(x.strip() for x in wanted.split(",")) | {"Energy.Active.Import.Register"}
    out = [{"value": float(data["energy_wh"]), "context": context,
            "measurand": "Energy.Active.Import.Register", "unit_of_measure": {"unit": "Wh"}}]
    if "Current.Import" in want:
        for i, amps in enumerate(data["currents_a"]):
            out.append({"value": round(amps, 1), "context": context, "measurand": "Current.Import",
                        "phase": "L%d" % (i + 1), "unit_of_measure": {"unit": "A"}})
    if "Power.Active.Import" in want:
        out.append({"value": float(data["power_w"]), "context": context,
                    "measurand": "Power.Active.Import", "unit_of_measure": {"unit": "W"}})
    return out


def id_token(tag: str, remote: bool = False) -> dict:
    return {"id_token": tag, "type": "Central" if remote else "ISO14443"}


class Point201(SimPoint, ChargePoint):
    # -- calls to the server -------------------------------------------------
    async def send_boot(self, reason: str = "PowerUp") -> tuple[str, int]:
        spec = self.station.spec
        res = await self._call(call.BootNotification(
            charging_station={"model": spec.model, "vendor_name": spec.vendor,
                              "firmware_version": "sim-1"}, reason=reason))
        return res.status, int(res.interval)

    async def send_heartbeat(self) -> None:
        await self._call(call.Heartbeat())

    async def send_authorize(self, tag: str) -> str:
        res = await self._call(call.Authorize(id_token=id_token(tag)))
        return res.id_token_info["status"]

    async def send_record(self, rec: Record) -> None:
        st = self.station
        if rec.kind == "status":
            await self._call(call.StatusNotification(
                timestamp=iso(rec.at_s), evse_id=rec.connector_id, connector_id=1,
                connector_status=CONNECTOR_STATUS.get(rec.data["status"], "Occupied")))
            return
        tx = rec.tx
        # The state when the event happened (a late delivery must not report today's).
        state = CHARGING_STATE.get(rec.data.get("state") or st.connectors[rec.connector_id].state,
                                   "EVConnected")
        info = {"transaction_id": tx.server_id, "charging_state": state}
        kwargs = dict(timestamp=iso(rec.at_s), seq_no=rec.data["seq_no"],
                      offline=True if rec.offline else None)
        if rec.kind == "start":
            remote = rec.data["trigger"] == "RemoteStart"
            if tx.remote_start_id is not None:
                info["remote_start_id"] = tx.remote_start_id
            res = await self._call(call.TransactionEvent(
                event_type="Started", trigger_reason=rec.data["trigger"], transaction_info=info,
                id_token=id_token(tx.id_tag, remote), evse={"id": rec.connector_id, "connector_id": 1},
                meter_value=[{"timestamp": iso(rec.at_s), "sampled_value": [{
                    "value": float(rec.data["meter_wh"]), "context": "Transaction.Begin",
                    "measurand": "Energy.Active.Import.Register",
                    "unit_of_measure": {"unit": "Wh"}}]}], **kwargs))
            status = (res.id_token_info or {}).get("status", "Accepted")
            if status != "Accepted":
                st.start_rejected(tx, status)
        elif rec.kind == "meter":
            await self._call(call.TransactionEvent(
                event_type="Updated", transaction_info=info,
                trigger_reason="Trigger" if rec.data.get("context") == "Trigger"
                else "MeterValuePeriodic",
                meter_value=[{"timestamp": iso(rec.at_s), "sampled_value": sampled_values(
                    rec.data, rec.data.get("context", "Sample.Periodic"),
                    st.conf("MeterValuesSampledData"))}], **kwargs))
        elif rec.kind == "stop":
            reason = rec.data["reason"]
            info.update(charging_state="EVConnected" if reason != "EVDisconnected" else "Idle",
                        stopped_reason=reason)
            await self._call(call.TransactionEvent(
                event_type="Ended", trigger_reason=STOP_TRIGGER.get(reason, "AbnormalCondition"),
                transaction_info=info,
                meter_value=[{"timestamp": iso(rec.at_s), "sampled_value": sampled_values(
                    rec.data["sample"], "Transaction.End", "")}], **kwargs))

    # -- handlers ------------------------------------------------------------
    @on("SetChargingProfile")
    def on_set_charging_profile(self, evse_id, charging_profile, **_):
        st = self.station
        try:
            profile = parse_v201(evse_id, charging_profile, st.clock(),
                                 st.conf_int("ChargingScheduleMaxPeriods"))
        except ProfileError as e:
            log.warning("%s: SetChargingProfile rejected: %s", st.id, e)
            return call_result.SetChargingProfile(
                status="Rejected", status_info={"reason_code": "InvalidValue",
                                                "additional_info": str(e)[:500]})
        return call_result.SetChargingProfile(status=st.set_profile(profile))

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, charging_profile_id=None, charging_profile_criteria=None, **_):
        c = charging_profile_criteria or {}
        purpose = c.get("charging_profile_purpose")
        found = self.station.clear_profiles(
            profile_id=charging_profile_id, connector_id=c.get("evse_id"),
            purpose=PURPOSES_201.get(purpose) if purpose else None, stack_level=c.get("stack_level"))
        return call_result.ClearChargingProfile(status="Accepted" if found else "Unknown")

    @on("RequestStartTransaction")
    def on_request_start(self, id_token, remote_start_id, evse_id=None, charging_profile=None, **_):
        st = self.station
        profile = None
        if charging_profile is not None:
            if not st.spec.accept_profiles or evse_id is None:
                return call_result.RequestStartTransaction(status="Rejected")
            try:
                profile = parse_v201(evse_id, charging_profile, st.clock(),
                                     st.conf_int("ChargingScheduleMaxPeriods"))
            except ProfileError as e:
                log.warning("%s: RequestStart profile rejected: %s", st.id, e)
                return call_result.RequestStartTransaction(status="Rejected")
            if profile.purpose != "tx":
                return call_result.RequestStartTransaction(status="Rejected")
        ok = st.remote_start(evse_id, id_token["id_token"], remote_start_id, profile)
        return call_result.RequestStartTransaction(status="Accepted" if ok else "Rejected")

    @on("RequestStopTransaction")
    def on_request_stop(self, transaction_id, **_):
        ok = self.station.remote_stop(transaction_id)
        return call_result.RequestStopTransaction(status="Accepted" if ok else "Rejected")

    @on("SendLocalList")
    def on_send_local_list(self, version_number, update_type, local_authorization_list=None, **_):
        st = self.station
        items_in = local_authorization_list or []
        full = update_type == "Full"
        if not st.conf_bool("LocalAuthListEnabled"):
            return call_result.SendLocalList(status="Failed")
        if not full and version_number <= st.local_list.version:
            return call_result.SendLocalList(status="VersionMismatch")
        size = len(json.dumps(items_in))
        if size > st.spec.local_list_bytes_per_message:
            log.warning("%s: SendLocalList failed: %d bytes > BytesPerMessage %d",
                        st.id, size, st.spec.local_list_bytes_per_message)
            return call_result.SendLocalList(status="Failed")
        try:
            items = []
            for i, item in enumerate(items_in):
                path = "local_authorization_list[%d].id_token_info" % i
                entry = entry_from_info(item.get("id_token_info"), path)
                if entry is None and full:
                    raise ListError(path, None, "is required in a Full update")
                items.append((item["id_token"]["id_token"], entry))
            st.local_list.apply(version_number, full, items)
        except ListError as e:
            log.warning("%s: SendLocalList failed: %s", st.id, e)
            return call_result.SendLocalList(status="Failed", status_info={
                "reason_code": "InvalidValue", "additional_info": str(e)[:500]})
        return call_result.SendLocalList(status="Accepted")

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **_):
        return call_result.GetLocalListVersion(version_number=self.station.local_list.version)

    def _variable(self, component: dict, variable: dict):
        """(source, known component?) for a device-model variable."""
        name, var = component.get("name"), variable.get("name")
        source = cfg.V201_VARIABLES.get((name, var))
        known = any(c == name for c, _ in cfg.V201_VARIABLES)
        return source, known

    def _value(self, source: str) -> str:
        st = self.station
        special = {"=true": "true", "=entries": str(len(st.local_list)),
                   "=bytes_per_message": str(st.spec.local_list_bytes_per_message),
                   "=smart_charging": "true" if st.spec.accept_profiles else "false",
                   "=profiles": str(len(st.profiles)), "=rate_unit": "A,W"}
        return special[source] if source.startswith("=") else st.conf(source)

    def _resolve(self, item):
        """(result with component/variable/type, source of the value) for one requested
        variable; the source is None when the status is already set (unknown, or not
        the Actual attribute)."""
        comp, var = item["component"], item["variable"]
        kind = item.get("attribute_type", "Actual")
        source, known = self._variable(comp, var)
        res = {"component": comp, "variable": var, "attribute_type": kind}
        if source is None:
            res["attribute_status"] = "UnknownVariable" if known else "UnknownComponent"
            return res, None
        if kind != "Actual":
            res["attribute_status"] = "NotSupportedAttributeType"
            return res, None
        return res, source

    @on("GetVariables")
    def on_get_variables(self, get_variable_data, **_):
        results = []
        for item in get_variable_data:
            res, source = self._resolve(item)
            if source is not None:
                res["attribute_status"] = "Accepted"
                res["attribute_value"] = self._value(source)
            results.append(res)
        return call_result.GetVariables(get_variable_result=results)

    @on("SetVariables")
    def on_set_variables(self, set_variable_data, **_):
        st = self.station
        results = []
        for item in set_variable_data:
            res, source = self._resolve(item)
            if source is not None and source.startswith("="):
                res["attribute_status"] = "Rejected"    # derived values cannot be set
            elif source is not None:
                status = st.change_conf(source, item["attribute_value"])
                res["attribute_status"] = "Accepted" if status == "Accepted" else "Rejected"
            results.append(res)
        return call_result.SetVariables(set_variable_result=results)

    def _report_data(self, wanted=None) -> list[dict]:
        """Device-model report; `maxLimit` of LocalAuthListCtrlr.Entries is the capacity.

        `wanted`: None for everything, else [(component, variable or None)].
        """
        st = self.station
        data = []
        for (comp, var), source in cfg.V201_VARIABLES.items():
            if wanted is not None and not any(
                    c == comp and v in (None, var) for c, v in wanted):
                continue
            ro = source.startswith("=") or st.config[source]["readonly"]
            if source.startswith("="):
                kind = {"=true": "boolean", "=smart_charging": "boolean",
                        "=rate_unit": "MemberList"}.get(source, "integer")
            else:
                kind = {cfg.INT: "integer", cfg.BOOL: "boolean"}.get(
                    st.config[source]["type"], "string")
            chars = {"data_type": kind, "supports_monitoring": False}
            if (comp, var) == ("LocalAuthListCtrlr", "Entries"):
                chars["max_limit"] = st.spec.local_list_max
            if (comp, var) == ("SmartChargingCtrlr", "Entries"):
                chars["max_limit"] = st.spec.max_profiles
            data.append({"component": {"name": comp}, "variable": {"name": var},
                         "variable_attribute": [{"type": "Actual", "value": self._value(source),
                                                 "mutability": "ReadOnly" if ro else "ReadWrite"}],
                         "variable_characteristics": chars})
        return data

    async def _send_report(self, request_id: int, data: list[dict]) -> None:
        st = self.station
        try:
            await self._call(call.NotifyReport(request_id=request_id, generated_at=iso(st.clock()),
                                              seq_no=0, report_data=data))
        except Exception as e:  # the connection may be gone already
            log.info("%s: NotifyReport not sent: %s", st.id, e)

    @on("GetBaseReport")
    def on_get_base_report(self, request_id, report_base, **_):
        return call_result.GetBaseReport(status="Accepted")

    @after("GetBaseReport")
    async def after_get_base_report(self, request_id, report_base, **_):
        await self._send_report(request_id, self._report_data())

    @staticmethod
    def _wanted(component_variable):
        if not component_variable:
            return None
        return [(cv["component"]["name"], (cv.get("variable") or {}).get("name"))
                for cv in component_variable]

    @on("GetReport")
    def on_get_report(self, request_id, component_variable=None, component_criteria=None, **_):
        if not self._report_data(self._wanted(component_variable)):
            return call_result.GetReport(status="EmptyResultSet")
        return call_result.GetReport(status="Accepted")

    @after("GetReport")
    async def after_get_report(self, request_id, component_variable=None, **_):
        data = self._report_data(self._wanted(component_variable))
        if data:
            await self._send_report(request_id, data)

    @on("ChangeAvailability")
    def on_change_availability(self, operational_status, evse=None, **_):
        # Each EVSE has one connector here, so an EVSE and its connector are the same.
        target = 0 if evse is None else evse.get("id", 0)
        status = self.station.change_availability(target, operational_status == "Operative")
        return call_result.ChangeAvailability(status=status)

    @on("UnlockConnector")
    def on_unlock_connector(self, evse_id, connector_id, **_):
        conn = self.station.connector(evse_id)
        if conn is None or connector_id != 1:
            return call_result.UnlockConnector(status="UnknownConnector")
        if conn.tx is not None:
            # 2.0.1: a running, authorized session is not ended by an unlock request.
            return call_result.UnlockConnector(status="OngoingAuthorizedTransaction")
        return call_result.UnlockConnector(status="Unlocked")

    @on("Reset")
    def on_reset(self, type, evse_id=None, **_):
        if evse_id is not None:
            return call_result.Reset(status="Rejected")   # whole-station resets only
        busy = any(c.tx is not None for c in self.station.connectors.values())
        if type == "OnIdle" and busy:
            return call_result.Reset(status="Rejected", status_info={
                "reason_code": "TxInProgress", "additional_info": "resets when idle only"})
        return call_result.Reset(status="Accepted")

    @after("Reset")
    async def after_reset(self, type, evse_id=None, **_):
        st = self.station
        busy = any(c.tx is not None for c in st.connectors.values())
        if evse_id is not None or (type == "OnIdle" and busy):
            return
        st.reset("ImmediateReset")
        if st.link is not None:
            await st.link.reboot()

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message, evse=None, **_):
        if evse is not None and evse.get("id") not in self.station.connectors:
            return call_result.TriggerMessage(status="Rejected")
        if requested_message in ("BootNotification", "Heartbeat", "MeterValues",
                                 "StatusNotification", "TransactionEvent"):
            return call_result.TriggerMessage(status="Accepted")
        return call_result.TriggerMessage(status="NotImplemented")

    @after("TriggerMessage")
    async def after_trigger_message(self, requested_message, evse=None, **_):
        st = self.station
        only = evse.get("id") if evse else None
        try:
            if requested_message == "BootNotification":
                await self.send_boot("Triggered")
            elif requested_message == "Heartbeat":
                await self.send_heartbeat()
            else:
                now = st.clock()
                for conn in st.connectors.values():
                    if only not in (None, conn.id):
                        continue
                    if requested_message == "StatusNotification":
                        st.enqueue(Record("status", conn.id, now, False, data={"status": conn.state}))
                    elif conn.tx is not None:
                        st.integrate(conn, now)
                        data = dict(st.sample_data(conn), context="Trigger")
                        st.enqueue(Record("meter", conn.id, now, False, conn.tx, data))
        except Exception as e:
            log.info("%s: triggered %s not sent: %s", st.id, requested_message, e)
