"""The control step is driven by what happens: a grid reading, a session starting or
ending; the floor only when readings stop. Real Modbus TCP meter (pymodbus), real OCPP
wallboxes (the ocpp library over websockets), real SQLite store. No timing assertions:
the floor is set to a minute, so a reaction that came from the floor would not come
within the waits below at all."""
import asyncio

import pytest

from edge import config
from edge.service import EdgeService
from host_tools.sim_meter import SimMeter
from host_tools.wallbox_sim.fleet import Fleet
from host_tools.wallbox_sim.model import ConnectorSpec, StationSpec

PASSWORD = "control-loop-test-pw"
FLOOR_S = 60          # control.interval_s: longer than any wait in these tests


def site(meter_port: int, store: str, max_age_s: int = 2) -> dict:
    return {
        "site": {"site_id": "loop", "timezone": "UTC0", "offline_unknown_tokens": "accept",
                 "grid": {"max_current_a": 40, "safety_margin_a": 1},
                 "charging_groups": [{"id": "g", "name": "G", "stations": [
                     {"id": sid, "connectors": [{"id": 1, "phases": 3, "wiring": "L1L2L3",
                                                 "min_current_a": 6, "max_current_a": 16}]}
                     for sid in ("CP1", "CP2")]}]},
        "load_management": {"meter_max_age_s": max_age_s, "failsafe_non_ev_a": 30,
                            "raise_holdoff_s": 1},
        "meters": [{"id": "grid", "model": "eastron_sdm630", "host": "127.0.0.1",
                    "port": meter_port, "interval_s": 0.25, "timeout_s": 0.2, "retries": 0,
                    "stale_after_s": max_age_s}],
        "ocpp": {"host": "127.0.0.1", "port": 0,
                 "stations": {"CP1": {"password": PASSWORD}, "CP2": {"password": PASSWORD}}},
        "store": {"path": store},
        "control": {"interval_s": FLOOR_S},
    }


class Building:
    """The simulated grid meter serves the building's load plus what the cars draw."""

    def __init__(self, fleet_ref: list) -> None:
        self.load_a = 5.0
        self.fleet_ref = fleet_ref

    def values(self) -> dict:
        cars = 0.0
        for fleet in self.fleet_ref:
            for sid in ("CP1", "CP2"):
                conn = fleet.connector(sid, 1)
                cars += conn.drawn_a if conn.drawn_phases else 0.0
        return {"current_a": [self.load_a + cars] * 3, "voltage_v": [230.0] * 3}


@pytest.fixture
async def building():
    fleets: list = []
    b = Building(fleets)
    m = SimMeter("eastron_sdm630", values=b.values())
    m.values_provider = b.values
    await m.start()
    b.meter = m
    yield b
    await m.stop()


def fleet_for(svc) -> Fleet:
    return Fleet("ws://127.0.0.1:%d" % svc.ocpp_port,
                 [StationSpec(id=sid, version=v, password=PASSWORD,
                              connectors=[ConnectorSpec(3, 16)], response_delay_s=0.1)
                  for sid, v in (("CP1", "1.6"), ("CP2", "2.0.1"))])


def record_steps(svc) -> list:
    steps = []

    def seen(s):
        reading = s.poller.latest("grid")
        steps.append({"reason": s.trigger.last_reason, "mode": s.last.status["mode"],
                      "meter_at_s": reading.at_s if reading else None, "now": s.clock(),
                      "limits": dict(s.last.limits)})
    svc.on_cycle(seen)
    return steps


async def test_a_reading_triggers_the_step_and_a_load_step_reaches_the_wallboxes(building, tmp_path, until):
    svc = EdgeService(config.from_dict(site(building.meter.port, str(tmp_path / "e.db"))))
    readings = []
    await svc.start()
    svc.poller.subscribe(lambda r: readings.append(r.at_s))
    steps = record_steps(svc)
    fleet = fleet_for(svc)
    building.fleet_ref.append(fleet)
    try:
        await fleet.start()
        await fleet.wait_connected()
        assert await fleet.plug_in("CP1", 1, "TOKEN-A", 50000, 16)
        assert await fleet.plug_in("CP2", 1, "TOKEN-B", 50000, 16)
        # 40 A - 1 A margin - 5 A building: both cars get their 16 A
        assert await until(lambda: all(fleet.connector(s, 1).limit_a == 16.0 for s in ("CP1", "CP2")))
        n_before = len(steps)

        building.load_a = 25.0      # 40 - 1 - 25 = 14 A left: 7 A each
        assert await until(lambda: all((fleet.connector(s, 1).limit_a or 99) <= 7.0
                                       for s in ("CP1", "CP2")), 15), steps[-1:]
        cut = next(st for st in steps[n_before:] if st["limits"][("CP1", 1)][0] <= 70)
        assert cut["reason"] == "reading"           # decided on arrival, not on a timer
        assert svc.trigger.reasons["floor"] == 0    # the minute floor never came round
        # every step after start came from a reading or a session change, and the
        # readings each woke one (a reading coming while a step runs joins the next one)
        assert {st["reason"] for st in steps} <= {"start", "reading", "session"}
        used = {st["meter_at_s"] for st in steps if st["reason"] == "reading"}
        assert len(used) >= len(readings) // 2 > 3
        assert svc.trigger.reasons["session"] >= 1   # the plug-ins woke it too
    finally:
        await fleet.stop()
        await svc.stop()


async def test_staleness_is_judged_by_the_meter_answer_not_the_floor(building, tmp_path, until):
    svc = EdgeService(config.from_dict(site(building.meter.port, str(tmp_path / "e.db"),
                                            max_age_s=2)))
    await svc.start()
    steps = record_steps(svc)
    try:
        assert await until(lambda: steps and steps[-1]["mode"] == "normal")
        building.meter.set_fault("silent")
        n_before = len(steps)
        # The floor is a minute, yet the fail-safe comes: the step is pulled in to the
        # moment the last answer turns stale.
        assert await until(lambda: steps[-1]["mode"] == "failsafe", 15), steps[-3:]
        first = next(st for st in steps[n_before:] if st["mode"] == "failsafe")
        assert first["reason"] == "floor"
        assert svc.last.status["reason"] == "meter_stale"
        assert first["now"] - first["meter_at_s"] > 2      # aged by its answer time
        # and with the meter silent the floor paces the steps again: none in a second
        n_stale = len(steps)
        await asyncio.sleep(1.0)
        assert len(steps) == n_stale, steps[n_stale:n_stale + 3]
        before = [st for st in steps[:n_before] if st["mode"] == "normal"]
        assert before[-1]["now"] - before[-1]["meter_at_s"] <= 2

        building.meter.set_fault(None)
        assert await until(lambda: steps[-1]["mode"] == "normal", 15)
        assert steps[-1]["reason"] == "reading"
    finally:
        await svc.stop()


async def test_open_sessions_are_rebuilt_from_the_store_after_a_restart(building, tmp_path, until):
    store = str(tmp_path / "e.db")
    svc = EdgeService(config.from_dict(site(building.meter.port, store)))
    await svc.start()
    fleet = fleet_for(svc)
    try:
        await fleet.start()
        await fleet.wait_connected()
        assert await fleet.plug_in("CP1", 1, "TOKEN-A", 50000, 16)
        assert await until(lambda: len(svc.gateway.live_sessions()) == 1)
        before = svc.sessions.open_sessions()
    finally:
        await fleet.stop()
        await svc.stop()

    again = EdgeService(config.from_dict(site(building.meter.port, store)))
    await again.start()
    try:
        # no wallbox is connected: what the allocation sees came from the store
        assert again.sessions.open_sessions() == before
        assert [s["session_id"] for s in again.gateway.live_sessions()] == [before[0]["session_id"]]
        assert await until(lambda: again.last is not None)
        assert ("CP1", 1) in again.last.limits
    finally:
        await again.stop()


async def test_unchanged_limits_send_nothing(building, tmp_path, until):
    svc = EdgeService(config.from_dict(site(building.meter.port, str(tmp_path / "e.db"))))
    await svc.start()
    fleet = fleet_for(svc)
    building.fleet_ref.append(fleet)
    key = ("CP1", 1)
    calls = []
    apply = svc.gateway.apply_limits

    async def watched(limits):
        station = fleet.station("CP1")
        before = len(station.profile_log)
        results = await apply(limits)
        calls.append({"limit": limits.get(key), "result": results.get(key),
                      "other": results.get(("CP2", 1)),
                      "sent": len(station.profile_log) - before})
        return results
    svc.gateway.apply_limits = watched
    try:
        await fleet.start()
        await fleet.wait_connected()
        assert await fleet.plug_in("CP1", 1, "TOKEN-A", 50000, 16)
        assert await until(lambda: calls and calls[-1]["limit"] == (160, 3)
                           and calls[-1]["result"] in ("accepted", "unchanged"), 30), calls[-3:]
        n = len(calls)
        assert await until(lambda: len(calls) >= n + 8)      # reading-driven steps
        repeats = [c for prev, c in zip(calls[n - 1:], calls[n:])
                   if c["limit"] == prev["limit"] and prev["result"] in ("accepted", "unchanged")]
        assert len(repeats) >= 4
        for c in repeats:
            # the same limit again: nothing goes to the wallbox, no task, no store
            assert c["result"] == "unchanged" and c["sent"] == 0, str([(d["limit"], d["result"], d["sent"]) for d in calls])
            assert c["other"] == "no_transaction"
    finally:
        await fleet.stop()
        await svc.stop()


async def test_the_step_builds_the_same_sessions_a_chunk_at_a_time(building, tmp_path, until):
    svc = EdgeService(config.from_dict(site(building.meter.port, str(tmp_path / "e.db"))))
    await svc.start()
    fleet = fleet_for(svc)
    try:
        await fleet.start()
        await fleet.wait_connected()
        assert await fleet.plug_in("CP1", 1, "TOKEN-A", 50000, 16)
        assert await fleet.plug_in("CP2", 1, "TOKEN-B", 50000, 16)
        assert await until(lambda: len(svc.gateway.live_sessions()) == 2)
        # one session per turn: the same list as in one go
        assert await svc.gateway.live_sessions_yielding(per_turn=1) == svc.gateway.live_sessions()
    finally:
        await fleet.stop()
        await svc.stop()
