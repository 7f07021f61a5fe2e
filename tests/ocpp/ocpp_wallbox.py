"""Test wallboxes: the ocpp library's charge-point side, recording what the edge asks.

Each wallbox answers the edge's calls like a small real wallbox (configurable list
capacity, profile acceptance) and records every call in ``received`` plus an asyncio
queue, so tests wait for events instead of sleeping.
"""
from __future__ import annotations

import asyncio
import base64
from datetime import datetime, timezone

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as CP16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as res16
from ocpp.v16.enums import Action as A16
from ocpp.v201 import ChargePoint as CP201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as res201
from ocpp.v201.enums import Action as A201

GUARD_S = 10  # hang guard only; no test asserts on durations


def ts(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Recorder:
    def _init_recorder(self, list_max: int = 48, profile_status: str = "Accepted"):
        self.received: list[tuple[str, dict]] = []
        self._events: asyncio.Queue = asyncio.Queue()
        self.list_max = list_max
        self.profile_status = profile_status
        self.list_version_held = 0
        self.local_list: dict[str, dict] = {}
        self.profiles: dict[int, dict] = {}
        self.config: dict[str, str] = {}
        self.remote_start_status = "Accepted"

    def _record(self, action: str, payload: dict) -> None:
        self.received.append((action, payload))
        self._events.put_nowait((action, payload))

    async def wait_for(self, action: str, pred=lambda p: True) -> dict:
        """Next received call of ``action`` matching ``pred`` (earlier ones are consumed)."""
        async def _wait():
            while True:
                a, p = await self._events.get()
                if a == action and pred(p):
                    return p
        return await asyncio.wait_for(_wait(), GUARD_S)

    def calls(self, action: str) -> list[dict]:
        return [p for a, p in self.received if a == action]


class Wallbox16(CP16, _Recorder):
    def __init__(self, cid, conn, **kw):
        CP16.__init__(self, cid, conn, response_timeout=GUARD_S)
        self._init_recorder(**kw)

    @on(A16.get_configuration)
    def on_get_configuration(self, key=None, **kw):
        self._record("GetConfiguration", {"key": key})
        known = {"LocalAuthListMaxLength": str(self.list_max),
                 "SendLocalListMaxLength": str(self.list_max)}
        return res16.GetConfiguration(configuration_key=[
            {"key": k, "readonly": True, "value": known[k]} for k in (key or []) if k in known])

    @on(A16.change_configuration)
    def on_change_configuration(self, key, value):
        self._record("ChangeConfiguration", {"key": key, "value": value})
        self.config[key] = value
        return res16.ChangeConfiguration(status="Accepted")

    @on(A16.set_charging_profile)
    def on_set_charging_profile(self, connector_id, cs_charging_profiles):
        self._record("SetChargingProfile", {"connector_id": connector_id,
                                            "profile": cs_charging_profiles})
        if self.profile_status == "Accepted":
            self.profiles[cs_charging_profiles["charging_profile_id"]] = cs_charging_profiles
        return res16.SetChargingProfile(status=self.profile_status)

    @on(A16.clear_charging_profile)
    def on_clear_charging_profile(self, **kw):
        self._record("ClearChargingProfile", kw)
        return res16.ClearChargingProfile(status="Accepted")

    @on(A16.remote_start_transaction)
    def on_remote_start(self, id_tag, **kw):
        self._record("RemoteStartTransaction", dict(kw, id_tag=id_tag))
        return res16.RemoteStartTransaction(status=self.remote_start_status)

    @on(A16.remote_stop_transaction)
    def on_remote_stop(self, transaction_id):
        self._record("RemoteStopTransaction", {"transaction_id": transaction_id})
        return res16.RemoteStopTransaction(status="Accepted")

    @on(A16.get_local_list_version)
    def on_get_local_list_version(self):
        self._record("GetLocalListVersion", {})
        return res16.GetLocalListVersion(list_version=self.list_version_held)

    @on(A16.send_local_list)
    def on_send_local_list(self, list_version, update_type, local_authorization_list=None):
        entries = local_authorization_list or []
        self._record("SendLocalList", {"list_version": list_version, "update_type": update_type,
                                       "entries": entries})
        new = {} if update_type == "Full" else dict(self.local_list)
        for e in entries:
            if e.get("id_tag_info") is None:
                new.pop(e["id_tag"], None)
            else:
                new[e["id_tag"]] = e["id_tag_info"]
        if len(new) > self.list_max:
            return res16.SendLocalList(status="Failed")
        self.local_list = new
        self.list_version_held = list_version
        return res16.SendLocalList(status="Accepted")

    @on(A16.trigger_message)
    def on_trigger(self, requested_message, connector_id=None):
        self._record("TriggerMessage", {"requested_message": requested_message})
        return res16.TriggerMessage(status="Accepted")

    async def boot(self):
        return await self.call(call16.BootNotification(
            charge_point_vendor="TestVendor", charge_point_model="TB-16",
            firmware_version="1.2.3", charge_point_serial_number="SN16"))


class Wallbox201(CP201, _Recorder):
    def __init__(self, cid, conn, bytes_per_message=None, **kw):
        CP201.__init__(self, cid, conn, response_timeout=GUARD_S)
        self.bytes_per_message = bytes_per_message
        self._init_recorder(**kw)

    @on(A201.get_variables)
    def on_get_variables(self, get_variable_data, **kw):
        self._record("GetVariables", {"data": get_variable_data})
        out = []
        for d in get_variable_data:
            name = d["variable"]["name"]
            if d["component"]["name"] == "LocalAuthListCtrlr" and name == "ItemsPerMessage":
                out.append({"attribute_status": "Accepted", "attribute_value": str(self.list_max),
                            "component": d["component"], "variable": d["variable"]})
            elif d["component"]["name"] == "LocalAuthListCtrlr" and name == "BytesPerMessage" \
                    and self.bytes_per_message is not None:
                out.append({"attribute_status": "Accepted",
                            "attribute_value": str(self.bytes_per_message),
                            "component": d["component"], "variable": d["variable"]})
            else:
                out.append({"attribute_status": "UnknownVariable",
                            "component": d["component"], "variable": d["variable"]})
        return res201.GetVariables(get_variable_result=out)

    @on(A201.get_report)
    def on_get_report(self, request_id, **kw):
        self._record("GetReport", dict(kw, request_id=request_id))
        asyncio.ensure_future(self._send_report(request_id))
        return res201.GetReport(status="Accepted")

    async def _send_report(self, request_id):
        await self.call(call201.NotifyReport(
            request_id=request_id, generated_at=ts(0), seq_no=0, report_data=[{
                "component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "Entries"},
                "variable_attribute": [{"type": "Actual", "value": str(len(self.local_list))}],
                "variable_characteristics": {"data_type": "integer", "supports_monitoring": False,
                                             "max_limit": self.list_max}}]))

    @on(A201.set_variables)
    def on_set_variables(self, set_variable_data, **kw):
        self._record("SetVariables", {"data": set_variable_data})
        out = []
        for d in set_variable_data:
            self.config["%s.%s" % (d["component"]["name"], d["variable"]["name"])] = \
                d["attribute_value"]
            out.append({"attribute_status": "Accepted", "component": d["component"],
                        "variable": d["variable"]})
        return res201.SetVariables(set_variable_result=out)

    @on(A201.set_charging_profile)
    def on_set_charging_profile(self, evse_id, charging_profile, **kw):
        self._record("SetChargingProfile", {"connector_id": evse_id, "profile": charging_profile})
        if self.profile_status == "Accepted":
            self.profiles[charging_profile["id"]] = charging_profile
        return res201.SetChargingProfile(status=self.profile_status)

    @on(A201.clear_charging_profile)
    def on_clear_charging_profile(self, **kw):
        self._record("ClearChargingProfile", kw)
        return res201.ClearChargingProfile(status="Accepted")

    @on(A201.request_start_transaction)
    def on_request_start(self, id_token, remote_start_id, **kw):
        self._record("RequestStartTransaction", dict(kw, id_token=id_token,
                                                     remote_start_id=remote_start_id))
        return res201.RequestStartTransaction(status=self.remote_start_status)

    @on(A201.request_stop_transaction)
    def on_request_stop(self, transaction_id, **kw):
        self._record("RequestStopTransaction", {"transaction_id": transaction_id})
        return res201.RequestStopTransaction(status="Accepted")

    @on(A201.get_local_list_version)
    def on_get_local_list_version(self, **kw):
        self._record("GetLocalListVersion", {})
        return res201.GetLocalListVersion(version_number=self.list_version_held)

    @on(A201.send_local_list)
    def on_send_local_list(self, version_number, update_type, local_authorization_list=None, **kw):
        entries = local_authorization_list or []
        self._record("SendLocalList", {"list_version": version_number, "update_type": update_type,
                                       "entries": entries})
        new = {} if update_type == "Full" else dict(self.local_list)
        for e in entries:
            uid = e["id_token"]["id_token"]
            if e.get("id_token_info") is None:
                new.pop(uid, None)
            else:
                new[uid] = e["id_token_info"]
        if len(new) > self.list_max:
            return res201.SendLocalList(status="Failed")
        self.local_list = new
        self.list_version_held = version_number
        return res201.SendLocalList(status="Accepted")

    @on(A201.trigger_message)
    def on_trigger(self, requested_message, **kw):
        self._record("TriggerMessage", {"requested_message": requested_message})
        return res201.TriggerMessage(status="Accepted")

    async def boot(self):
        return await self.call(call201.BootNotification(
            charging_station={"vendor_name": "TestVendor", "model": "TB-201",
                              "firmware_version": "2.0.0", "serial_number": "SN201"},
            reason="PowerUp"))


def basic(station_id: str, password: str) -> dict:
    token = base64.b64encode(("%s:%s" % (station_id, password)).encode()).decode()
    return {"Authorization": "Basic " + token}


class Connected:
    """An open connection with its ChargePoint running; ``close()`` ends both."""

    def __init__(self, ws, cp, task):
        self.ws, self.cp, self.task = ws, cp, task

    async def close(self):
        await self.ws.close()
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, websockets.ConnectionClosed):
            pass


async def connect(port: int, station_id: str, version: str, password: str | None = None,
                  boot: bool = True, **kw) -> Connected:
    proto = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    headers = basic(station_id, password) if password is not None else {}
    ws = await websockets.connect("ws://127.0.0.1:%d/%s" % (port, station_id),
                                  subprotocols=[proto], additional_headers=headers, proxy=None)
    cls = Wallbox16 if version == "1.6" else Wallbox201
    cp = cls(station_id, ws, **kw)
    task = asyncio.ensure_future(cp.start())
    conn = Connected(ws, cp, task)
    if boot:
        res = await cp.boot()
        assert res.status == "Accepted"
        # after boot the edge configures the wallbox, pushes its list, then asks for status
        await cp.wait_for("TriggerMessage")
    return conn


async def until(pred) -> None:
    """Wait for a condition the server reaches asynchronously (hang guard only)."""
    async def _poll():
        while not pred():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(_poll(), GUARD_S)


def tx_event(event_type, tx_id, at_s, seq, token=None, evse=1, energy_wh=None,
             currents=None, offline=None, reason=None, trigger="Authorized"):
    """A 2.0.1 TransactionEvent request as a wallbox builds it."""
    samples = []
    if energy_wh is not None:
        samples.append({"value": energy_wh, "measurand": "Energy.Active.Import.Register",
                        "unit_of_measure": {"unit": "Wh"}})
    for phase, amps in (currents or {}).items():
        samples.append({"value": amps, "measurand": "Current.Import", "phase": phase,
                        "unit_of_measure": {"unit": "A"}})
    info = {"transaction_id": tx_id}
    if reason:
        info["stopped_reason"] = reason
    kw = {}
    if samples:
        kw["meter_value"] = [{"timestamp": ts(at_s), "sampled_value": samples}]
    if token:
        kw["id_token"] = {"id_token": token, "type": "ISO14443"}
    if evse:
        kw["evse"] = {"id": evse, "connector_id": 1}
    if offline is not None:
        kw["offline"] = offline
    return call201.TransactionEvent(event_type=event_type, timestamp=ts(at_s),
                                 trigger_reason=trigger, seq_no=seq,
                                 transaction_info=info, **kw)


async def recv_reply(ws):
    """Next CallResult/CallError on a raw connection, skipping the edge's own CALLs
    (a station that talks without booting gets the after-boot sequence)."""
    import json
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
        if msg[0] != 2:
            return msg
