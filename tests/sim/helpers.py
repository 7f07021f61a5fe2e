"""Version-neutral reading of what the test central system received."""
from __future__ import annotations

import asyncio

from host_tools.sim_wallbox import Fleet, ManualClock, StationSpec

VERSIONS = ["1.6", "2.0.1"]


async def until(predicate, what: str, timeout: float = 10.0):
    """Poll a condition on the simulator side (failure timeout only)."""
    async def loop():
        while not predicate():
            await asyncio.sleep(0.005)
    try:
        await asyncio.wait_for(loop(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError("never happened: " + what) from None


def fleet_for(cs, specs, clock=None, **kw) -> Fleet:
    return Fleet(cs.url, specs, seed=1, clock=clock or ManualClock(), reconnect_s=0.05,
                 response_timeout_s=5, **kw)


def spec(sid, version, **kw) -> StationSpec:
    kw.setdefault("response_delay_s", 0)
    return StationSpec(id=sid, version=version, **kw)


def starts(cs, version, station=None):
    """[(id_tag, timestamp, connector, meter_wh, offline)]"""
    if version == "1.6":
        return [(p["id_tag"], p["timestamp"], p["connector_id"], p["meter_start"], None)
                for p in cs.calls("StartTransaction", station)]
    return [(p["id_token"]["id_token"], p["timestamp"], p["evse"]["id"],
             p["meter_value"][0]["sampled_value"][0]["value"], p.get("offline"))
            for p in cs.calls("TransactionEvent", station) if p["event_type"] == "Started"]


def stops(cs, version, station=None):
    """[(timestamp, meter_wh, reason)]"""
    if version == "1.6":
        return [(p["timestamp"], p["meter_stop"], p.get("reason"))
                for p in cs.calls("StopTransaction", station)]
    out = []
    for p in cs.calls("TransactionEvent", station):
        if p["event_type"] == "Ended":
            energy = [s["value"] for s in p["meter_value"][0]["sampled_value"]
                      if s["measurand"] == "Energy.Active.Import.Register"][0]
            out.append((p["timestamp"], energy, p["transaction_info"].get("stopped_reason")))
    return out


def samples(cs, version, station=None):
    """[(timestamp, energy_wh, [amps per phase], offline)] of periodic meter values."""
    if version == "1.6":
        raw = [(mv, None) for p in cs.calls("MeterValues", station) for mv in p["meter_value"]]
    else:
        raw = [(mv, p.get("offline")) for p in cs.calls("TransactionEvent", station)
               if p["event_type"] == "Updated" for mv in p["meter_value"]]
    out = []
    for mv, offline in raw:
        energy, amps = None, []
        for s in mv["sampled_value"]:
            if s["measurand"] == "Energy.Active.Import.Register":
                energy = float(s["value"])
            elif s["measurand"] == "Current.Import":
                amps.append(float(s["value"]))
        out.append((mv["timestamp"], energy, amps, offline))
    return out


def statuses(cs, station=None):
    return [p.get("status") or p.get("connector_status")
            for p in cs.calls("StatusNotification", station)]
