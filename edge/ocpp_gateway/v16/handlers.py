"""OCPP 1.6J translator: one handler per message, wire <-> neutral calls in logic.Logic."""
from __future__ import annotations

import json
import logging
import math
from typing import Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

from edge.ocpp_gateway.framing import WIRE_LOG
from edge.ocpp_gateway.link import GuardedCalls
from edge.ocpp_gateway.peer_text import quote
from edge.ocpp_gateway.wire_time import to_epoch_s, to_wire

log = logging.getLogger(__name__)

MAX_SAMPLE = 1e12   # Wh or A; beyond any real register: a broken meter, not data

# Handlers skip the library's schema validation: link.Link has already validated every
# request (with spec error codes), and the library would validate again in a worker
# thread per message. Responses are checked by the test wallboxes, which validate them.

# storage_low (the edge's disk is nearly full) is Invalid too: Blocked would tell the
# driver their card is blocked, and 1.6 has no "not now".
_STATUS = {"token_blocked": "Blocked", "token_expired": "Expired", "storage_low": "Invalid"}
_PURPOSE = {"tx": "TxProfile", "tx_default": "TxDefaultProfile",
            "station_max": "ChargePointMaxProfile"}
_LIST_STATUS = {"valid": "Accepted", "accepted": "Accepted", "blocked": "Blocked",
                "expired": "Expired"}


def id_tag_info(decision: Any) -> dict[str, Any]:
    if decision is None:
        return {"status": "Invalid"}
    if decision.accepted:
        info: dict[str, Any] = {"status": "Accepted"}
        if decision.expires_s is not None:
            info["expiry_date"] = to_wire(decision.expires_s)
        return info
    return {"status": _STATUS.get(decision.reason, "Invalid")}


def samples_from_wire(meter_value: list[dict]) -> list[dict]:
    """1.6 MeterValue list -> neutral samples (value in Wh or A); bad values are skipped."""
    out = []
    for mv in meter_value or []:
        at_s = to_epoch_s(mv["timestamp"], "meterValue.timestamp")
        for sv in mv.get("sampled_value") or []:
            if sv.get("format") == "SignedData":
                continue
            try:
                value = float(sv["value"])
            except (TypeError, ValueError):
                value = float("nan")
            if not math.isfinite(value) or abs(value) > MAX_SAMPLE:
                log.debug("sampled value %r is not a usable number; skipped", sv.get("value"))
                continue
            unit = sv.get("unit") or "Wh"
            if unit in ("kWh", "kW", "kvarh", "kvar", "kVA"):
                value *= 1000
            out.append({"at_s": at_s, "measurand": sv.get("measurand"),
                        "phase": sv.get("phase"), "location": sv.get("location"),
                        "context": sv.get("context"), "value": value})
    return out


def _energy_wh(value: Any) -> int:
    return int(value)


class StationV16(GuardedCalls, ChargePoint):
    """The server side of one 1.6J connection."""

    def __init__(self, st: Any, connection: Any, gw: Any, response_timeout: float) -> None:
        super().__init__(st.id, connection, response_timeout=response_timeout,
                         logger=WIRE_LOG)
        self.st = st
        self.gw = gw
        self.logic = gw.logic
        self._refused: dict | None = None   # a refused start answered just now

    # -- from the wallbox ---------------------------------------------------------
    @on(Action.boot_notification, skip_schema_validation=True)
    def on_boot(self, charge_point_vendor: str, charge_point_model: str, **kw: Any):
        self.logic.boot(self.st, charge_point_vendor, charge_point_model,
                        kw.get("firmware_version"),
                        kw.get("charge_point_serial_number") or kw.get("charge_box_serial_number"))
        return call_result.BootNotification(current_time=to_wire(self.logic.now()),
                                            interval=self.gw.heartbeat_s, status="Accepted")

    @after(Action.boot_notification)
    def after_boot(self, **kw: Any):
        # Outgoing calls must not run inside the handler (the library would deadlock).
        self.gw.coalesce(self.st, "boot", lambda: self.gw.after_boot(self.st))

    @on(Action.heartbeat, skip_schema_validation=True)
    def on_heartbeat(self):
        self.logic.seen(self.st)
        return call_result.Heartbeat(current_time=to_wire(self.logic.now()))

    @on(Action.status_notification, skip_schema_validation=True)
    def on_status(self, connector_id: int, error_code: str, status: str, **kw: Any):
        self.logic.status(self.st, connector_id, status, error_code)
        return call_result.StatusNotification()

    @on(Action.authorize, skip_schema_validation=True)
    async def on_authorize(self, id_tag: str):
        return call_result.Authorize(id_tag_info=id_tag_info(
            await self.logic.authorize(self.st, id_tag, None)))

    @on(Action.start_transaction, skip_schema_validation=True)
    async def on_start_tx(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str,
                          **kw: Any):
        rec, decision, _ = await self.logic.start(self.st, connector_id, id_tag,
                                            _energy_wh(meter_start), to_epoch_s(timestamp))
        info = id_tag_info(decision)
        if self.logic.honour_offline_start(self.st, rec, id_tag):
            info = {"status": "Accepted"}
        if rec["refused"] and rec["state"] == "started":
            self._refused = rec
        return call_result.StartTransaction(transaction_id=int(rec["transaction_id"]),
                                            id_tag_info=info)

    @after(Action.start_transaction)
    def after_start_tx(self, **kw: Any):
        # after the answer: the wallbox must know the transaction id before it is stopped
        rec, self._refused = self._refused, None
        if rec is not None:
            self.gw.stop_refused(self.st, rec)

    @on(Action.stop_transaction, skip_schema_validation=True)
    async def on_stop_tx(self, meter_stop: int, timestamp: str, transaction_id: int, **kw: Any):
        # parse everything before changing anything
        stopped_s = to_epoch_s(timestamp)
        samples = samples_from_wire(kw.get("transaction_data") or [])
        rec = self.logic.sessions.by_transaction(self.st.id, transaction_id)
        if samples and rec is not None and rec["state"] == "started":
            self.logic.meter(self.st, rec["connector"], transaction_id, samples)
        self.logic.stop(self.st, transaction_id, stopped_s, _energy_wh(meter_stop),
                        kw.get("reason") or "Local")
        id_tag = kw.get("id_tag")
        if id_tag is None:
            return call_result.StopTransaction()
        return call_result.StopTransaction(id_tag_info=id_tag_info(
            await self.logic.authorize(self.st, id_tag, None, new_session=False)))

    @on(Action.meter_values, skip_schema_validation=True)
    def on_meter_values(self, connector_id: int, meter_value: list, **kw: Any):
        self.logic.meter(self.st, connector_id, kw.get("transaction_id"),
                         samples_from_wire(meter_value))
        return call_result.MeterValues()

    @on(Action.data_transfer, skip_schema_validation=True)
    def on_data_transfer(self, vendor_id: str, **kw: Any):
        log.info("station %s: DataTransfer from vendor %s ignored", self.st.id,
                 quote(vendor_id))
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.diagnostics_status_notification, skip_schema_validation=True)
    def on_diag_status(self, status: str):
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification, skip_schema_validation=True)
    def on_fw_status(self, status: str):
        return call_result.FirmwareStatusNotification()

    # -- to the wallbox -----------------------------------------------------------
    async def send_profile(self, p: dict[str, Any]) -> bool:
        period = {"start_period": 0, "limit": p["limit_da"] / 10}
        if p["phases"]:
            period["number_phases"] = p["phases"]
        profile = {
            "charging_profile_id": p["id"], "stack_level": p["stack_level"],
            "charging_profile_purpose": _PURPOSE[p["purpose"]],
            "charging_profile_kind": p["kind"],
            "charging_schedule": {"charging_rate_unit": "A",
                                  "charging_schedule_period": [period]},
        }
        if p["start_s"] is not None:
            profile["charging_schedule"]["start_schedule"] = to_wire(p["start_s"])
        if p["transaction_id"] is not None:
            profile["transaction_id"] = int(p["transaction_id"])
        res = await self.call(call.SetChargingProfile(connector_id=p["connector"],
                                                      cs_charging_profiles=profile),
                              suppress=False)
        return res.status == "Accepted"

    async def clear_profile(self, profile_id: int | None = None,
                            connector_id: int | None = None) -> bool:
        res = await self.call(call.ClearChargingProfile(id=profile_id, connector_id=connector_id),
                              suppress=False)
        return res.status == "Accepted"

    async def request_start(self, connector_id: int, id_tag: str) -> bool:
        res = await self.call(call.RemoteStartTransaction(id_tag=id_tag,
                                                          connector_id=connector_id),
                              suppress=False)
        return res.status == "Accepted"

    async def request_stop(self, transaction_id: Any) -> bool:
        res = await self.call(call.RemoteStopTransaction(transaction_id=int(transaction_id)),
                              suppress=False)
        return res.status == "Accepted"

    async def read_list_limits(self) -> tuple[int | None, int | None, int | None]:
        res = await self.call(call.GetConfiguration(
            key=["LocalAuthListMaxLength", "SendLocalListMaxLength"]), suppress=False)
        vals = {}
        for kv in res.configuration_key or []:
            try:
                vals[kv["key"]] = int(kv.get("value"))
            except (TypeError, ValueError):
                pass
        return vals.get("LocalAuthListMaxLength"), vals.get("SendLocalListMaxLength"), None

    async def list_version(self) -> int:
        res = await self.call(call.GetLocalListVersion(), suppress=False)
        return int(res.list_version)

    @staticmethod
    def _list_entry(entry: tuple) -> dict[str, Any]:
        uid, status, expires_s, _group = entry
        e: dict[str, Any] = {"id_tag": uid}
        if status is not None:
            info: dict[str, Any] = {"status": _LIST_STATUS.get(status, "Invalid")}
            if expires_s is not None:
                info["expiry_date"] = to_wire(expires_s)
            e["id_tag_info"] = info
        return e

    def entry_size(self, entry: tuple) -> int:
        return len(json.dumps(snake_to_camel_case(self._list_entry(entry))))

    async def push_list(self, update: dict[str, Any]) -> str:
        entries = [self._list_entry(e) for e in update["entries"]]
        res = await self.call(call.SendLocalList(list_version=update["version"],
                                                 update_type=update["type"],
                                                 local_authorization_list=entries),
                              suppress=False)
        return res.status

    async def configure(self, settings: dict[str, Any]) -> dict[str, str]:
        """settings: neutral names (meter_interval_s, local_list_enabled)."""
        keys = {"meter_interval_s": "MeterValueSampleInterval",
                "local_list_enabled": "LocalAuthListEnabled",
                "stop_on_invalid_id": "StopTransactionOnInvalidId",
                "measurands": "MeterValuesSampledData",
                "start_stop_measurands": "StopTxnSampledData"}
        out = {}
        for name, value in settings.items():
            if name not in keys:
                continue
            wire = str(value).lower() if isinstance(value, bool) else str(value)
            res = await self.call(call.ChangeConfiguration(key=keys[name], value=wire),
                                  suppress=False)
            out[name] = res.status
        return out

    async def trigger(self, what: str, connector_id: int | None = None) -> bool:
        res = await self.call(call.TriggerMessage(requested_message=what,
                                                  connector_id=connector_id), suppress=False)
        return res.status == "Accepted"
