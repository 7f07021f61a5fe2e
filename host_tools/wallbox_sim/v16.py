"""OCPP 1.6 face of a simulated wallbox (the `ocpp` library's charge-point side)."""
from __future__ import annotations

import logging

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result

from .clock import iso
from .local_list import ListError, entry_from_info
from .model import Record
from .point_base import SimPoint
from .profiles import PURPOSES_16, ProfileError, parse_v16

log = logging.getLogger(__name__)

MEASURAND_UNITS = {"Energy.Active.Import.Register": "Wh", "Current.Import": "A",
                   "Power.Active.Import": "W", "Current.Offered": "A"}


def sampled_values(data: dict, context: str, wanted: str) -> list[dict]:
    """1.6 sampledValue list (values are strings on the 1.6 wire)."""
    want = set(x.strip() for x in wanted.split(",")) | {"Energy.Active.Import.Register"}
    out = [{"value": str(data["energy_wh"]), "context": context, "format": "Raw",
            "measurand": "Energy.Active.Import.Register", "location": "Outlet", "unit": "Wh"}]
    if "Current.Import" in want:
        for i, amps in enumerate(data["currents_a"]):
            out.append({"value": "%.1f" % amps, "context": context,
                        "measurand": "Current.Import", "phase": "L%d" % (i + 1), "unit": "A"})
    if "Power.Active.Import" in want:
        out.append({"value": str(data["power_w"]), "context": context,
                    "measurand": "Power.Active.Import", "unit": "W"})
    if "Current.Offered" in want:
        out.append({"value": "%.1f" % data["offered_a"], "context": context,
                    "measurand": "Current.Offered", "unit": "A"})
    return out


class Point16(SimPoint, ChargePoint):
    """Handlers of the messages a 1.6 Central System sends, and the calls we make."""

    # -- calls to the server -------------------------------------------------
    async def send_boot(self, reason: str = "PowerUp") -> tuple[str, int]:
        res = await self._call(call.BootNotification(
            charge_point_model=self.station.spec.model, charge_point_vendor=self.station.spec.vendor,
            firmware_version="sim-1"))
        return res.status, int(res.interval)

    async def send_heartbeat(self) -> None:
        await self._call(call.Heartbeat())

    async def send_authorize(self, id_tag: str) -> str:
        res = await self._call(call.Authorize(id_tag=id_tag))
        return res.id_tag_info["status"]

    async def send_record(self, rec: Record) -> None:
        st = self.station
        if rec.kind == "status":
            await self._call(call.StatusNotification(
                connector_id=rec.connector_id, error_code="NoError", status=rec.data["status"],
                timestamp=iso(rec.at_s)))
        elif rec.kind == "start":
            res = await self._call(call.StartTransaction(
                connector_id=rec.connector_id, id_tag=rec.tx.id_tag,
                meter_start=rec.data["meter_wh"], timestamp=iso(rec.at_s)))
            rec.tx.server_id = str(res.transaction_id)
            status = res.id_tag_info.get("status")
            if status != "Accepted":
                st.start_rejected(rec.tx, status)
            st.recompute()
        elif rec.tx is None or rec.tx.server_id is None:
            log.warning("%s: dropping %s of a transaction the server never numbered",
                        st.id, rec.kind)
        elif rec.kind == "meter":
            await self._call(call.MeterValues(
                connector_id=rec.connector_id, transaction_id=int(rec.tx.server_id),
                meter_value=[{"timestamp": iso(rec.at_s), "sampled_value": sampled_values(
                    rec.data, rec.data.get("context", "Sample.Periodic"),
                    st.conf("MeterValuesSampledData"))}]))
        elif rec.kind == "stop":
            await self._call(call.StopTransaction(
                meter_stop=rec.data["meter_wh"], timestamp=iso(rec.at_s),
                transaction_id=int(rec.tx.server_id), reason=rec.data["reason"],
                id_tag=rec.tx.id_tag,
                transaction_data=[{"timestamp": iso(rec.at_s), "sampled_value": sampled_values(
                    rec.data["sample"], "Transaction.End", "")}]))

    # -- handlers (names must not shadow ChargePoint methods) -----------------
    @on("SetChargingProfile")
    def on_set_charging_profile(self, connector_id, cs_charging_profiles, **_):
        st = self.station
        if not st.spec.accept_profiles:
            return call_result.SetChargingProfile(status="NotSupported")
        try:
            profile = parse_v16(connector_id, cs_charging_profiles, st.clock(),
                                st.conf_int("ChargingScheduleMaxPeriods"))
        except ProfileError as e:
            log.warning("%s: SetChargingProfile rejected: %s", st.id, e)
            return call_result.SetChargingProfile(status="Rejected")
        return call_result.SetChargingProfile(status=st.set_profile(profile))

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, id=None, connector_id=None,
                                  charging_profile_purpose=None, stack_level=None, **_):
        purpose = PURPOSES_16.get(charging_profile_purpose) if charging_profile_purpose else None
        found = self.station.clear_profiles(profile_id=id, connector_id=connector_id,
                                            purpose=purpose, stack_level=stack_level)
        return call_result.ClearChargingProfile(status="Accepted" if found else "Unknown")

    @on("RemoteStartTransaction")
    def on_remote_start(self, id_tag, connector_id=None, charging_profile=None, **_):
        st = self.station
        profile = None
        if charging_profile is not None:
            if not st.spec.accept_profiles or connector_id is None:
                return call_result.RemoteStartTransaction(status="Rejected")
            try:
                profile = parse_v16(connector_id, charging_profile, st.clock(),
                                    st.conf_int("ChargingScheduleMaxPeriods"))
            except ProfileError as e:
                log.warning("%s: RemoteStart profile rejected: %s", st.id, e)
                return call_result.RemoteStartTransaction(status="Rejected")
            if profile.purpose != "tx":
                return call_result.RemoteStartTransaction(status="Rejected")
        ok = st.remote_start(connector_id, id_tag, profile=profile)
        return call_result.RemoteStartTransaction(status="Accepted" if ok else "Rejected")

    @on("RemoteStopTransaction")
    def on_remote_stop(self, transaction_id, **_):
        ok = self.station.remote_stop(transaction_id)
        return call_result.RemoteStopTransaction(status="Accepted" if ok else "Rejected")

    @on("SendLocalList")
    def on_send_local_list(self, list_version, update_type, local_authorization_list=(), **_):
        st = self.station
        if not st.conf_bool("LocalAuthListEnabled"):
            return call_result.SendLocalList(status="NotSupported")
        full = update_type == "Full"
        if not full and list_version <= st.local_list.version:
            return call_result.SendLocalList(status="VersionMismatch")
        try:
            items = []
            for i, item in enumerate(local_authorization_list or ()):
                path = "local_authorization_list[%d].id_tag_info" % i
                entry = entry_from_info(item.get("id_tag_info"), path)
                if entry is None and full:
                    raise ListError(path, None, "is required in a Full update")
                items.append((item["id_tag"], entry))
            st.local_list.apply(list_version, full, items)
        except ListError as e:
            log.warning("%s: SendLocalList failed: %s", st.id, e)
            return call_result.SendLocalList(status="Failed")
        return call_result.SendLocalList(status="Accepted")

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **_):
        st = self.station
        version = st.local_list.version if st.conf_bool("LocalAuthListEnabled") else -1
        return call_result.GetLocalListVersion(list_version=version)

    @on("ChangeConfiguration")
    def on_change_configuration(self, key, value, **_):
        status = self.station.change_conf(key, value)
        return call_result.ChangeConfiguration(status=status)

    @on("GetConfiguration")
    def on_get_configuration(self, key=None, **_):
        conf = self.station.config
        names = list(conf) if not key else key
        known = [{"key": k, "readonly": conf[k]["readonly"], "value": conf[k]["value"]}
                 for k in names if k in conf]
        unknown = [k for k in names if k not in conf]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on("ChangeAvailability")
    def on_change_availability(self, connector_id, type, **_):
        status = self.station.change_availability(connector_id, type == "Operative")
        return call_result.ChangeAvailability(status=status)

    @on("UnlockConnector")
    def on_unlock_connector(self, connector_id, **_):
        st = self.station
        conn = st.connector(connector_id)
        if conn is None:
            return call_result.UnlockConnector(status="UnlockFailed")
        if conn.tx is not None:
            st.stop_tx(conn, "UnlockCommand")   # 1.6: unlocking ends the session
        return call_result.UnlockConnector(status="Unlocked")

    @on("Reset")
    def on_reset(self, type, **_):
        return call_result.Reset(status="Accepted")

    @after("Reset")
    async def after_reset(self, type, **_):
        st = self.station
        st.reset("HardReset" if type == "Hard" else "SoftReset")
        if st.link is not None:
            await st.link.reboot(drain_s=0.0 if type == "Hard" else 5.0)

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message, connector_id=None, **_):
        if connector_id is not None and connector_id != 0 \
                and connector_id not in self.station.connectors:
            return call_result.TriggerMessage(status="Rejected")
        if requested_message in ("BootNotification", "Heartbeat", "MeterValues",
                                 "StatusNotification"):
            return call_result.TriggerMessage(status="Accepted")
        return call_result.TriggerMessage(status="NotImplemented")

    @after("TriggerMessage")
    async def after_trigger_message(self, requested_message, connector_id=None, **_):
        st = self.station
        try:
            if requested_message == "BootNotification":
                await self.send_boot()
            elif requested_message == "Heartbeat":
                await self.send_heartbeat()
            elif requested_message in ("StatusNotification", "MeterValues"):
                now = st.clock()
                for conn in st.connectors.values():
                    if connector_id not in (None, 0, conn.id):
                        continue
                    if requested_message == "StatusNotification":
                        st.enqueue(Record("status", conn.id, now, False, data={"status": conn.state}))
                    elif conn.tx is not None:
                        st.integrate(conn, now)
                        data = dict(st.sample_data(conn), context="Trigger")
                        st.enqueue(Record("meter", conn.id, now, False, conn.tx, data))
        except Exception as e:  # the connection may be gone already
            log.info("%s: triggered %s not sent: %s", st.id, requested_message, e)
