"""Below the free-space floor new sessions are refused; what is running goes on.

Real store on a real SQLite file, real websockets, the ocpp library as the wallbox; the
free space of the disk is the one thing injected (a function, as the service's
``disk_free``), so the test can move it across the floor.
"""
import logging

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from ocpp_testdata import NOW, STATIONS_CFG
from ocpp_wallbox import connect, ts, tx_event, until

from edge.ocpp_gateway import Gateway
from edge.store.space import MB, SpaceFloor

FLOOR = 64 * MB


class Disk:
    def __init__(self):
        self.free = 10 * 1024 * MB

    def __call__(self, path):
        return self.free


@pytest.fixture
def disk():
    return Disk()


@pytest.fixture
def space(tmp_path, disk, clock):
    return SpaceFloor(str(tmp_path / "edge.db"), FLOOR, probe=disk, clock=clock, every_s=0)


@pytest.fixture
async def gw(site, lists, sessions, clock, events, space):
    g = Gateway(site, STATIONS_CFG, lists, sessions, clock=clock, space=space,
                on_event=lambda name, body: events.append((name, body)),
                response_timeout_s=10, sample_flush_s=0.05)
    g.port = await g.start("127.0.0.1", 0)
    yield g
    await g.stop()


async def test_16_below_the_floor_new_starts_are_refused_running_ones_finish(
        gw, sessions, disk, space, caplog):
    caplog.set_level(logging.INFO, logger="edge")
    c = await connect(gw.port, "CP16", "1.6", "secret-16")
    running = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1",
                                                      meter_start=1000, timestamp=ts(NOW)))
    assert running.id_tag_info["status"] == "Accepted"
    disk.free = FLOOR - 1
    # a driver taps a card: refused, with a status that does not call the card blocked
    auth = await c.cp.call(call16.Authorize(id_tag="STAFF2"))
    assert auth.id_tag_info["status"] == "Invalid"
    # a wallbox that starts without asking first: answered Invalid, capped at 0 A, stopped
    new = await c.cp.call(call16.StartTransaction(connector_id=2, id_tag="STAFF2",
                                                  meter_start=0, timestamp=ts(NOW + 60)))
    assert new.id_tag_info["status"] == "Invalid"
    await c.cp.wait_for("RemoteStopTransaction",
                        lambda p: p["transaction_id"] == new.transaction_id)
    refused = sessions.by_transaction("CP16", new.transaction_id)
    assert refused["refused"] == "storage_low" and refused["group_id"] is None
    assert [s["key"] for s in gw.live_sessions()] == [("CP16", 1)]   # nothing allocated to it
    # the running session: meter values and its stop are recorded as usual
    await c.cp.call(call16.MeterValues(connector_id=1, transaction_id=running.transaction_id,
                                       meter_value=[{"timestamp": ts(NOW + 300),
                                                     "sampled_value": [{"value": "4000"}]}]))
    stop = await c.cp.call(call16.StopTransaction(
        meter_stop=6000, timestamp=ts(NOW + 600), transaction_id=running.transaction_id,
        id_tag="STAFF1", reason="Local"))
    assert stop.id_tag_info["status"] == "Accepted"     # the floor never refuses a stop
    rec = sessions.by_transaction("CP16", running.transaction_id)
    assert (rec["state"], rec["energy_wh"], rec["group_id"]) == ("completed", 5000, "g-staff")
    assert 4000 in [s["energy_wh"] for s in sessions.samples(rec["session_id"])]
    # said once for the incident, however many refusals
    await c.cp.call(call16.Authorize(id_tag="STAFF1"))
    warned = [r for r in caplog.records if r.levelno == logging.WARNING
              and "below the floor" in r.getMessage()]
    assert len(warned) == 1 and space.state()["low"] is True
    # space comes back: said once, and new sessions start again
    disk.free = FLOOR + MB
    auth = await c.cp.call(call16.Authorize(id_tag="STAFF2"))
    assert auth.id_tag_info["status"] == "Accepted"
    back = [r for r in caplog.records if "free again" in r.getMessage()]
    assert len(back) == 1
    assert (space.state()["low"], space.state()["since_s"], space.incidents) == (False, None, 1)
    await c.close()


async def test_201_below_the_floor_a_started_event_is_refused_updates_go_on(
        gw, sessions, disk):
    c = await connect(gw.port, "CP201", "2.0.1", "secret-201")
    await c.cp.call(tx_event("Started", "tx-run", NOW, 0, token="STAFF1", energy_wh=100))
    disk.free = 0
    auth = await c.cp.call(call201.Authorize(id_token={"id_token": "STAFF2",
                                                       "type": "ISO14443"}))
    assert auth.id_token_info["status"] == "NotAtThisTime"
    # the running transaction's update carries its token: not refused (the wallbox would
    # stop it), and its meter value is recorded
    upd = await c.cp.call(tx_event("Updated", "tx-run", NOW + 60, 1, token="STAFF1",
                                   energy_wh=900, trigger="MeterValuePeriodic"))
    assert upd.id_token_info["status"] == "Accepted"
    await c.cp.call(tx_event("Ended", "tx-run", NOW + 120, 2, energy_wh=1500, reason="Local"))
    rec = sessions.by_transaction("CP201", "tx-run")
    assert (rec["state"], rec["energy_wh"], rec["group_id"]) == ("completed", 1400, "g-staff")
    # a new transaction on the freed EVSE: NotAtThisTime, recorded as refused, stopped
    new = await c.cp.call(tx_event("Started", "tx-new", NOW + 180, 0, token="STAFF2",
                                   energy_wh=1500))
    assert new.id_token_info["status"] == "NotAtThisTime"
    await c.cp.wait_for("RequestStopTransaction", lambda p: p["transaction_id"] == "tx-new")
    assert sessions.by_transaction("CP201", "tx-new")["refused"] == "storage_low"
    assert gw.live_sessions() == []
    await c.close()


async def test_remote_start_below_the_floor_is_refused(gw, disk):
    c = await connect(gw.port, "CP16", "1.6", "secret-16")
    disk.free = 0
    out = await gw.remote_start("CP16", 2, "pay-1")
    assert out == {"accepted": False, "reason": "storage_low", "id_tag": None}
    assert c.cp.calls("RemoteStartTransaction") == []
    disk.free = FLOOR
    assert (await gw.remote_start("CP16", 2, "pay-2"))["accepted"] is True
    await c.close()


async def test_a_started_session_is_not_refused_when_reported_late(gw, sessions, disk, clock):
    """A start from the wallbox's offline queue happened before the disk filled up: it is
    recorded as it was authorized (the car has charged), not refused."""
    c = await connect(gw.port, "CP16", "1.6", "secret-16")
    disk.free = 0
    clock.t = NOW + 3600
    await c.close()
    c = await connect(gw.port, "CP16", "1.6", "secret-16", boot=False)
    await until(lambda: gw.stations["CP16"].connected)
    late = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1",
                                                   meter_start=0, timestamp=ts(NOW)))
    rec = sessions.by_transaction("CP16", late.transaction_id)
    assert rec["refused"] is None and rec["reported_late"] is True
    await c.close()


async def test_201_a_transaction_first_told_as_it_ends_is_recorded_as_authorized(
        gw, sessions, disk):
    """Plugged in before the disk filled up, the card shown only at the end: the session
    has happened, so it is recorded through its group, not refused."""
    c = await connect(gw.port, "CP201", "2.0.1", "secret-201")
    await c.cp.call(tx_event("Started", "tx-late-token", NOW, 0, energy_wh=300,
                             trigger="CablePluggedIn"))
    disk.free = 0
    end = await c.cp.call(tx_event("Ended", "tx-late-token", NOW + 600, 1, token="STAFF1",
                                   energy_wh=2300, reason="Local"))
    assert end.id_token_info["status"] == "Accepted"
    rec = sessions.by_transaction("CP201", "tx-late-token")
    assert (rec["refused"], rec["group_id"], rec["state"], rec["energy_wh"]) == \
        (None, "g-staff", "completed", 2000)
    assert c.cp.calls("RequestStopTransaction") == []
    await c.close()
