"""OCPP 2.0.1 translator: one handler per message, wire <-> neutral calls in logic.Logic.

An EVSE id is the site configuration's connector id (wallboxes have one connector per
EVSE). TransactionEvent is mapped to start / meter / stop; a transaction whose id token
is not known yet (plugged in before the card was shown) is held until the token comes.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action

from edge.ocpp_gateway.framing import WIRE_LOG
from edge.ocpp_gateway.link import GuardedCalls
from edge.ocpp_gateway.peer_text import quote
from edge.ocpp_gateway.wire_time import to_epoch_s, to_wire

log = logging.getLogger(__name__)

MAX_SAMPLE = 1e12   # Wh or A; beyond any real register: a broken meter, not data

# Handlers skip the library's schema validation: link.Link has already validated every
# request (with spec error codes), and the library would validate again in a worker
# thread per message. Responses are checked by the test wallboxes, which validate them.

_STATUS = {"token_blocked": "Blocked", "token_expired": "Expired",
           "unknown_token": "Unknown", "not_active_here": "NotAtThisLocation",
           "outside_hours": "NotAtThisTime", "unknown_connector": "NotAllowedTypeEVSE",
           "provider_not_allowed": "NotAtThisLocation",
           # the token is fine; the site takes no new session now (edge disk full)
           "storage_low": "NotAtThisTime"}
_PURPOSE = {"tx": "TxProfile", "tx_default": "TxDefaultProfile",
            "station_max": "ChargingStationMaxProfile"}
_LIST_STATUS = {"valid": "Accepted", "accepted": "Accepted", "blocked": "Blocked",
                "expired": "Expired"}
ENERGY = "Energy.Active.Import.Register"
MAX_PENDING_TX = 16


def id_token_info(decision: Any) -> dict[str, Any]:
    if decision is None:
        return {"status": "Unknown"}
    if not decision.accepted:
        return {"status": _STATUS.get(decision.reason, "Invalid")}
    info: dict[str, Any] = {"status": "Accepted"}
    if decision.expires_s is not None:
        info["cache_expiry_date_time"] = to_wire(decision.expires_s)
    if decision.prioritised and decision.charging_priority:
        info["charging_priority"] = int(decision.charging_priority)
    return info


def samples_from_wire(meter_value: list[dict]) -> list[dict]:
    out = []
    for mv in meter_value or []:
        at_s = to_epoch_s(mv["timestamp"], "meterValue.timestamp")
        for sv in mv.get("sampled_value") or []:
            uom = sv.get("unit_of_measure") or {}
            try:
                value = float(sv["value"]) * 10 ** int(uom.get("multiplier", 0))
            except (TypeError, ValueError, KeyError, OverflowError):
                continue
            if not math.isfinite(value) or abs(value) > MAX_SAMPLE:
                continue
            if uom.get("unit") in ("kWh", "kW", "kvarh", "kvar", "kVA"):
                value *= 1000
            out.append({"at_s": at_s, "measurand": sv.get("measurand"),
                        "phase": sv.get("phase"), "location": sv.get("location"),
                        "context": sv.get("context"), "value": value})
    return out


def _first_energy(samples: list[dict]) -> int | None:
    for s in sorted(samples, key=lambda x: x["at_s"]):
        if (s["measurand"] or ENERGY) == ENERGY and not s["phase"]:
            return int(round(s["value"]))
    return None


def _last_energy(samples: list[dict]) -> int | None:
    found = None
    for s in sorted(samples, key=lambda x: x["at_s"]):
        if (s["measurand"] or ENERGY) == ENERGY and not s["phase"]:
            found = int(round(s["value"]))
    return found


class StationV201(GuardedCalls, ChargePoint):
    """The server side of one 2.0.1 connection."""

    def __init__(self, st: Any, connection: Any, gw: Any, response_timeout: float) -> None:
        super().__init__(st.id, connection, response_timeout=response_timeout,
                         logger=WIRE_LOG)
        self.st = st
        self.gw = gw
        self.logic = gw.logic
        self._reports: dict[int, asyncio.Future] = {}
        self._refused: dict | None = None   # a refused start answered just now
        self._next_request_id = 1

    # -- from the wallbox ---------------------------------------------------------
    @on(Action.boot_notification, skip_schema_validation=True)
    def on_boot(self, charging_station: dict, reason: str, **kw: Any):
        self.logic.boot(self.st, charging_station.get("vendor_name"),
                        charging_station.get("model"),
                        charging_station.get("firmware_version"),
                        charging_station.get("serial_number"))
        return call_result.BootNotification(current_time=to_wire(self.logic.now()),
                                            interval=self.gw.heartbeat_s, status="Accepted")

    @after(Action.boot_notification)
    def after_boot(self, **kw: Any):
        self.gw.coalesce(self.st, "boot", lambda: self.gw.after_boot(self.st))

    @on(Action.heartbeat, skip_schema_validation=True)
    def on_heartbeat(self):
        self.logic.seen(self.st)
        return call_result.Heartbeat(current_time=to_wire(self.logic.now()))

    @on(Action.status_notification, skip_schema_validation=True)
    def on_status(self, timestamp: str, connector_status: str, evse_id: int,
                  connector_id: int, **kw: Any):
        self.logic.status(self.st, evse_id, connector_status)
        return call_result.StatusNotification()

    @on(Action.authorize, skip_schema_validation=True)
    async def on_authorize(self, id_token: dict, **kw: Any):
        decision = await self.logic.authorize(self.st, id_token["id_token"], None)
        return call_result.Authorize(id_token_info=id_token_info(decision))

    @on(Action.transaction_event, skip_schema_validation=True)
    async def on_transaction_event(self, event_type: str, timestamp: str, trigger_reason: str,
                                   seq_no: int, transaction_info: dict, **kw: Any):
        st, logic = self.st, self.logic
        tx_id = transaction_info["transaction_id"]
        at_s = to_epoch_s(timestamp)
        samples = samples_from_wire(kw.get("meter_value") or [])
        token = (kw.get("id_token") or {}).get("id_token")
        evse = (kw.get("evse") or {}).get("id")
        rsid = transaction_info.get("remote_start_id")
        if rsid is not None and token not in st.pending_remote:
            # our remote start, reported under another token (e.g. the wallbox's own)
            for tag, p in st.pending_remote.items():
                if p.get("remote_start_id") == rsid:
                    token = tag
                    break
        rec = logic.sessions.by_transaction(st.id, tx_id)
        pend = st.pending_tx.get(tx_id)
        if rec is None and pend is None:
            pend = st.pending_tx[tx_id] = {"evse": evse, "started_s": at_s,
                                           "meter_start_wh": None,
                                           "offline": bool(kw.get("offline"))}
            while len(st.pending_tx) > MAX_PENDING_TX:
                # a wallbox has a handful of EVSEs; more open token-less transactions
                # means junk, and memory must stay bounded
                dropped = next(iter(st.pending_tx))
                del st.pending_tx[dropped]
                log.warning("station %s: token-less transaction %s dropped", st.id, dropped)
        if pend is not None:
            if pend["evse"] is None:
                pend["evse"] = evse
            if pend["meter_start_wh"] is None:
                pend["meter_start_wh"] = _first_energy(samples)
        decision = None
        created = False
        if rec is None and token is None and event_type == "Ended":
            start, stop = pend["meter_start_wh"], _last_energy(samples)
            if start is None or stop is None or stop <= start:
                # plugged in and out without authorization and without energy: nothing
                # to record (energy that did flow without a token is recorded below)
                st.pending_tx.pop(tx_id, None)
                return call_result.TransactionEvent()
        if rec is None and (token is not None or event_type == "Ended") and pend["evse"]:
            rec, decision, created = await logic.start(
                st, pend["evse"], token, pend["meter_start_wh"], pend["started_s"],
                transaction_id=tx_id, offline=pend["offline"] or bool(kw.get("offline")),
                ended=event_type == "Ended")
            st.pending_tx.pop(tx_id, None)
        elif token is not None:
            decision = await logic.authorize(st, token, rec["connector"] if rec else evse,
                                             new_session=rec is None)
        if rec is not None and samples and st.first_time_seq(tx_id, seq_no):
            logic.meter(st, rec["connector"], tx_id, samples)
        if event_type == "Ended":
            st.pending_tx.pop(tx_id, None)
        if rec is not None and event_type == "Ended":
            logic.stop(st, tx_id, at_s, _last_energy(samples),
                       transaction_info.get("stopped_reason") or "Local")
        if created and rec["refused"] and event_type != "Ended":
            self._refused = rec
        if token is None:
            return call_result.TransactionEvent()
        info = id_token_info(decision)
        if rec is not None and logic.honour_offline_start(st, rec, token):
            info = dict(info, status="Accepted")
        prio = info.get("charging_priority")
        return call_result.TransactionEvent(id_token_info=info, charging_priority=prio)

    @after(Action.transaction_event)
    def after_transaction_event(self, **kw: Any):
        # after the answer, so the wallbox has heard the refusal before it is stopped
        rec, self._refused = self._refused, None
        if rec is not None:
            self.gw.stop_refused(self.st, rec)

    @on(Action.meter_values, skip_schema_validation=True)
    def on_meter_values(self, evse_id: int, meter_value: list, **kw: Any):
        self.logic.meter(self.st, evse_id, None, samples_from_wire(meter_value))
        return call_result.MeterValues()

    @on(Action.data_transfer, skip_schema_validation=True)
    def on_data_transfer(self, vendor_id: str, **kw: Any):
        log.info("station %s: DataTransfer from vendor %s ignored", self.st.id,
                 quote(vendor_id))
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.notify_report, skip_schema_validation=True)
    def on_notify_report(self, request_id: int, generated_at: str, seq_no: int, **kw: Any):
        fut = self._reports.get(request_id)
        if fut is not None and not fut.done():
            fut.set_result(kw.get("report_data") or [])
        return call_result.NotifyReport()

    @on(Action.firmware_status_notification, skip_schema_validation=True)
    def on_fw_status(self, status: str, **kw: Any):
        return call_result.FirmwareStatusNotification()

    @on(Action.security_event_notification, skip_schema_validation=True)
    def on_security_event(self, type: str, timestamp: str, **kw: Any):
        log.warning("station %s: security event %s", self.st.id, quote(type))
        return call_result.SecurityEventNotification()

    # -- to the wallbox -----------------------------------------------------------
    async def send_profile(self, p: dict[str, Any]) -> bool:
        period: dict[str, Any] = {"start_period": 0, "limit": p["limit_da"] / 10}
        if p["phases"]:
            period["number_phases"] = p["phases"]
        profile: dict[str, Any] = {
            "id": p["id"], "stack_level": p["stack_level"],
            "charging_profile_purpose": _PURPOSE[p["purpose"]],
            "charging_profile_kind": p["kind"],
            "charging_schedule": [{"id": p["id"], "charging_rate_unit": "A",
                                   "charging_schedule_period": [period]}],
        }
        if p["start_s"] is not None:
            profile["charging_schedule"][0]["start_schedule"] = to_wire(p["start_s"])
        if p["transaction_id"] is not None:
            profile["transaction_id"] = str(p["transaction_id"])
        res = await self.call(call.SetChargingProfile(evse_id=p["connector"],
                                                      charging_profile=profile), suppress=False)
        return res.status == "Accepted"

    async def clear_profile(self, profile_id: int | None = None,
                            connector_id: int | None = None) -> bool:
        criteria = {"evse_id": connector_id} if connector_id is not None else None
        res = await self.call(call.ClearChargingProfile(charging_profile_id=profile_id,
                                                        charging_profile_criteria=criteria),
                              suppress=False)
        return res.status == "Accepted"

    async def request_start(self, connector_id: int, id_tag: str) -> bool:
        rid = self._next_request_id
        self._next_request_id += 1
        pending = self.st.pending_remote.get(id_tag)
        if pending is not None:
            pending["remote_start_id"] = rid
        res = await self.call(call.RequestStartTransaction(
            id_token={"id_token": id_tag, "type": "Central"}, remote_start_id=rid,
            evse_id=connector_id), suppress=False)
        return res.status == "Accepted"

    async def request_stop(self, transaction_id: Any) -> bool:
        res = await self.call(call.RequestStopTransaction(transaction_id=str(transaction_id)),
                              suppress=False)
        return res.status == "Accepted"

    async def read_list_limits(self) -> tuple[int | None, int | None, int | None]:
        """Entries' maxLimit (via GetReport/NotifyReport), ItemsPerMessage, BytesPerMessage."""
        per_msg: dict[str, int] = {}
        res = await self.call(call.GetVariables(get_variable_data=[
            {"component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": name}}
            for name in ("ItemsPerMessage", "BytesPerMessage")]), suppress=False)
        for r in res.get_variable_result or []:
            if r.get("attribute_status") == "Accepted":
                try:
                    per_msg[r["variable"]["name"]] = int(r.get("attribute_value"))
                except (TypeError, ValueError, KeyError):
                    pass
        rid = self._next_request_id
        self._next_request_id += 1
        fut = asyncio.get_running_loop().create_future()
        self._reports[rid] = fut
        max_entries = None
        try:
            rep = await self.call(call.GetReport(request_id=rid, component_variable=[
                {"component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "Entries"}}]),
                suppress=False)
            if rep.status == "Accepted":
                data = await asyncio.wait_for(fut, min(10.0, self._response_timeout))
                for d in data:
                    lim = (d.get("variable_characteristics") or {}).get("max_limit")
                    if lim is not None:
                        max_entries = int(lim)
        finally:
            self._reports.pop(rid, None)
        return max_entries, per_msg.get("ItemsPerMessage"), per_msg.get("BytesPerMessage")

    async def list_version(self) -> int:
        res = await self.call(call.GetLocalListVersion(), suppress=False)
        return int(res.version_number)

    def _list_entry(self, entry: tuple) -> dict[str, Any]:
        uid, status, expires_s, group_id = entry
        e: dict[str, Any] = {"id_token": {"id_token": uid, "type": "ISO14443"}}
        if status is not None:
            info: dict[str, Any] = {"status": _LIST_STATUS.get(status, "Invalid")}
            if expires_s is not None:
                info["cache_expiry_date_time"] = to_wire(expires_s)
            prio = self.gw.priority_of(group_id)
            if prio:
                info["charging_priority"] = prio
            e["id_token_info"] = info
        return e

    def entry_size(self, entry: tuple) -> int:
        """Bytes of one entry on the wire (BytesPerMessage budget)."""
        return len(json.dumps(snake_to_camel_case(self._list_entry(entry))))

    async def push_list(self, update: dict[str, Any]) -> str:
        entries = [self._list_entry(e) for e in update["entries"]]
        # 2.0.1 allows no empty list (minItems 1): a Full update that empties the
        # wallbox's list leaves the field out
        res = await self.call(call.SendLocalList(version_number=update["version"],
                                                 update_type=update["type"],
                                                 local_authorization_list=entries or None),
                              suppress=False)
        return res.status

    async def configure(self, settings: dict[str, Any]) -> dict[str, str]:
        names = {"meter_interval_s": ("SampledDataCtrlr", "TxUpdatedInterval"),
                 "local_list_enabled": ("LocalAuthListCtrlr", "Enabled"),
                 "stop_on_invalid_id": ("TxCtrlr", "StopTxOnInvalidId"),
                 "measurands": ("SampledDataCtrlr", "TxUpdatedMeasurands"),
                 "start_stop_measurands": ("SampledDataCtrlr", "TxStartedMeasurands"),
                 "stop_measurands": ("SampledDataCtrlr", "TxEndedMeasurands")}
        data, order = [], []
        if "start_stop_measurands" in settings:
            settings = dict(settings, stop_measurands=settings["start_stop_measurands"])
        for name, value in settings.items():
            if name not in names:
                continue
            comp, var = names[name]
            wire = str(value).lower() if isinstance(value, bool) else str(value)
            data.append({"component": {"name": comp}, "variable": {"name": var},
                         "attribute_value": wire})
            order.append(name)
        if not data:
            return {}
        res = await self.call(call.SetVariables(set_variable_data=data), suppress=False)
        out = {}
        for name, r in zip(order, res.set_variable_result or []):
            out[name] = r.get("attribute_status")
        return out

    async def trigger(self, what: str, connector_id: int | None = None) -> bool:
        evse = {"id": connector_id} if connector_id is not None else None
        res = await self.call(call.TriggerMessage(requested_message=what, evse=evse),
                              suppress=False)
        return res.status == "Accepted"
