"""A full disk: the edge refuses to acknowledge a stop it cannot store, and that is all.

The store is the real one on a real SQLite file; "disk full" is SQLite's own SQLITE_FULL,
made by capping the file at the pages it has (``PRAGMA max_page_count``) and filling the
room left inside them. The wallboxes behave like real ones: a TxProfile for a
transaction they no longer run is Rejected.
"""
import logging
import sqlite3

import pytest
import ocpp_wallbox
from ocpp.exceptions import InternalError
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16.enums import Action as A16
from ocpp.v201.enums import Action as A201
from ocpp_testdata import NOW, STATIONS_CFG
from ocpp_wallbox import Wallbox16, Wallbox201, connect, ts, tx_event, until

from edge.ocpp_gateway import Gateway


def fill(conn, outbox):
    """No room left: the file may not grow, and records queued for an unreachable cloud
    (the usual way a gateway's disk fills up) take the room left inside it."""
    conn.execute("PRAGMA max_page_count=%d" % conn.execute("PRAGMA page_count").fetchone()[0])
    queued = []
    for size in (3000, 500, 60, 1):
        while True:
            try:
                queued.append(outbox.enqueue("filler", "f", b"x" * size))
            except sqlite3.OperationalError as exc:
                assert "full" in str(exc)
                break
    return queued


def recover(conn, outbox, queued):
    """The cloud acknowledges the backlog and the disk has room again."""
    conn.execute("PRAGMA max_page_count=1073741823")
    outbox.ack(queued)


class TxAware16(Wallbox16):
    """Rejects a TxProfile for a transaction it is not running, as real wallboxes do."""
    running: set

    @on(A16.set_charging_profile)
    def on_set_charging_profile(self, connector_id, cs_charging_profiles):
        p = cs_charging_profiles
        if p["charging_profile_purpose"] == "TxProfile" and \
                p.get("transaction_id") not in getattr(self, "running", set()):
            self._record("SetChargingProfile", {"connector_id": connector_id, "profile": p})
            from ocpp.v16 import call_result
            return call_result.SetChargingProfile(status="Rejected")
        return super().on_set_charging_profile(connector_id, cs_charging_profiles)


class TxAware201(Wallbox201):
    @on(A201.set_charging_profile)
    def on_set_charging_profile(self, evse_id, charging_profile, **kw):
        p = charging_profile
        if p["charging_profile_purpose"] == "TxProfile" and \
                p.get("transaction_id") not in getattr(self, "running", set()):
            self._record("SetChargingProfile", {"connector_id": evse_id, "profile": p})
            from ocpp.v201 import call_result
            return call_result.SetChargingProfile(status="Rejected")
        return super().on_set_charging_profile(evse_id, charging_profile, **kw)


@pytest.fixture
async def gw(site, lists, sessions, clock, events):
    """The gateway with its periodic store writer every 50 ms (the service: 5 s)."""
    g = Gateway(site, STATIONS_CFG, lists, sessions, clock=clock,
                on_event=lambda name, body: events.append((name, body)),
                response_timeout_s=10, sample_flush_s=0.05)
    g.port = await g.start("127.0.0.1", 0)
    yield g
    await g.stop()


def _blamed(caplog):
    return [r.getMessage() for r in caplog.records
            if "uncontrollable" in r.getMessage() or "rejects charging profiles" in r.getMessage()]


async def _full_stop_16(gw, db, outbox, monkeypatch):
    """A 1.6 session whose StopTransaction the full store refuses; returns (c, tx,
    the filler records)."""
    monkeypatch.setattr(ocpp_wallbox, "Wallbox16", TxAware16)
    c = await connect(gw.port, "CP16", "1.6", "secret-16")
    c.cp.running = set()
    res = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1",
                                                  meter_start=1000, timestamp=ts(NOW)))
    tx = res.transaction_id
    c.cp.running.add(tx)
    await c.cp.call(call16.MeterValues(connector_id=1, transaction_id=tx, meter_value=[
        {"timestamp": ts(NOW + 600), "sampled_value": [{"value": "5000"}]}]))
    assert await gw.apply_limits({("CP16", 1): (160, 3)}) == {("CP16", 1): "accepted"}
    queued = fill(db, outbox)
    with pytest.raises(InternalError):        # nothing acknowledged that is not stored
        await c.cp.call(call16.StopTransaction(
            meter_stop=8000, timestamp=ts(NOW + 1200), transaction_id=tx,
            reason="EVDisconnected"), suppress=False)
    c.cp.running.discard(tx)                   # the wallbox has ended it all the same
    return c, tx, queued


async def test_16_store_error_on_a_stop_never_blames_the_wallbox(gw, db, outbox, sessions,
                                                                   monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="edge")
    c, tx, queued = await _full_stop_16(gw, db, outbox, monkeypatch)
    asked = len(c.cp.calls("SetChargingProfile"))
    for amps in (10, 12, 14):                  # three cycles while the disk is full
        out = await gw.apply_limits({("CP16", 1): (amps * 10, 3)})
        assert out == {("CP16", 1): "no_transaction"}
    assert len(c.cp.calls("SetChargingProfile")) == asked   # no profile for an ended tx
    assert gw.stations["CP16"].controllable is True
    assert gw.live_sessions() == []            # nothing allocated to an ended session
    assert _blamed(caplog) == []
    # said once: the store's incident (WARNING), the held session (INFO); no traceback of
    # the library per refused message, no wallbox payload in the log
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("edge")]
    assert [r.getMessage()[:26] for r in warned] == ["the store refuses writes ("]
    held = [r for r in caplog.records if "could not be stored" in r.getMessage()]
    assert len(held) == 1 and held[0].levelno == logging.INFO
    # the wallbox sends its stop again once the disk has room: recorded as it happened
    recover(db, outbox, queued)
    await c.cp.call(call16.StopTransaction(meter_stop=8000, timestamp=ts(NOW + 1200),
                                           transaction_id=tx, reason="EVDisconnected"),
                    suppress=False)
    rec = sessions.by_transaction("CP16", tx)
    assert (rec["state"], rec["stop_reason"], rec["stopped_s"], rec["meter_stop_wh"],
            rec["energy_wh"]) == ("completed", "EVDisconnected", NOW + 1200, 8000, 7000)
    await c.close()


async def test_16_new_start_after_a_refused_stop_is_not_superseded(gw, db, outbox, sessions,
                                                                    monkeypatch, events):
    c, tx, queued = await _full_stop_16(gw, db, outbox, monkeypatch)
    recover(db, outbox, queued)
    # the wallbox gave up on its stop and the next driver plugs in
    r2 = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF2",
                                                 meter_start=8000, timestamp=ts(NOW + 1800)))
    assert r2.id_tag_info["status"] == "Accepted"
    await until(lambda: sessions.by_transaction("CP16", tx)["state"] == "completed")
    old = sessions.by_transaction("CP16", tx)
    assert old["stop_reason"] == "EVDisconnected"      # not "Superseded"
    assert (old["stopped_s"], old["meter_stop_wh"], old["energy_wh"]) == \
        (NOW + 1200, 8000, 7000)
    assert [r["transaction_id"] for r in sessions.open_sessions()] == [str(r2.transaction_id)]
    stopped = [b["session_id"] for n, b in events if n == "session_stopped"]
    assert stopped == [old["session_id"]]             # told once, when it was written
    # its records reach the outbox in order: started, completed
    kinds = [r.decoded_body()["state"] for r in outbox.pending(100)
             if r.key == old["session_id"]]
    assert kinds == ["started", "completed"]
    await c.close()


async def test_201_store_error_on_ended_never_blames_the_wallbox(gw, db, outbox, sessions,
                                                                   monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="edge")
    monkeypatch.setattr(ocpp_wallbox, "Wallbox201", TxAware201)
    c = await connect(gw.port, "CP201", "2.0.1", "secret-201")
    c.cp.running = {"tx-d"}
    await c.cp.call(tx_event("Started", "tx-d", NOW, 0, token="STAFF1", energy_wh=2000))
    assert await gw.apply_limits({("CP201", 1): (160, 3)}) == {("CP201", 1): "accepted"}
    queued = fill(db, outbox)
    with pytest.raises(InternalError):
        await c.cp.call(tx_event("Ended", "tx-d", NOW + 900, 1, energy_wh=9000,
                                 reason="EVDisconnected", trigger="EVCommunicationLost"),
                        suppress=False)
    c.cp.running.discard("tx-d")
    asked = len(c.cp.calls("SetChargingProfile"))
    assert await gw.apply_limits({("CP201", 1): (100, 3)}) == {("CP201", 1): "no_transaction"}
    assert len(c.cp.calls("SetChargingProfile")) == asked
    assert gw.stations["CP201"].controllable is True and _blamed(caplog) == []
    # a new transaction on the same EVSE once the disk has room: the old one keeps its end
    recover(db, outbox, queued)
    await c.cp.call(tx_event("Started", "tx-e", NOW + 1500, 0, token="STAFF2", energy_wh=9000))
    await until(lambda: sessions.by_transaction("CP201", "tx-d")["state"] == "completed")
    old = sessions.by_transaction("CP201", "tx-d")
    assert (old["stop_reason"], old["stopped_s"], old["meter_stop_wh"], old["energy_wh"]) == \
        ("EVDisconnected", NOW + 900, 9000, 7000)
    await c.close()


async def test_a_held_stop_is_written_at_shutdown(site, lists, sessions, clock, db, outbox,
                                                 monkeypatch):
    """The store has room again but the periodic writer has not run yet (5 s) when the
    service stops: the stop is written on the way out, not lost with the memory."""
    g = Gateway(site, STATIONS_CFG, lists, sessions, clock=clock, response_timeout_s=10)
    g.port = await g.start("127.0.0.1", 0)
    c, tx, queued = await _full_stop_16(g, db, outbox, monkeypatch)
    recover(db, outbox, queued)
    await c.close()
    await g.stop()
    rec = sessions.by_transaction("CP16", tx)
    assert (rec["state"], rec["stopped_s"], rec["meter_stop_wh"]) == ("completed", NOW + 1200, 8000)
