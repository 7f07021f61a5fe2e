"""Retention pruning a store grown far past its period while wallboxes keep talking."""
import asyncio

from ocpp.v16 import call
from ocpp_testdata import NOW
from ocpp_wallbox import connect, ts

from edge.store.retention import DAY_S, RetentionPolicy, RetentionWorker

PW = "secret-16"


async def _charge(cp, sessions, at_s):
    """One whole 1.6 session; returns what the wallbox was told and what was stored."""
    told = [(await cp.call(call.Authorize(id_tag="STAFF1"))).id_tag_info["status"]]
    res = await cp.call(call.StartTransaction(connector_id=1, id_tag="STAFF1", meter_start=0,
                                              timestamp=ts(at_s)))
    told.append(res.id_tag_info["status"])
    await cp.call(call.MeterValues(connector_id=1, transaction_id=res.transaction_id,
                                   meter_value=[{"timestamp": ts(at_s + 10), "sampled_value": [
                                       {"value": "100", "measurand":
                                        "Energy.Active.Import.Register", "unit": "Wh"}]}]))
    stop = await cp.call(call.StopTransaction(meter_stop=500, timestamp=ts(at_s + 60),
                                              transaction_id=res.transaction_id))
    told.append(stop.id_tag_info["status"] if stop.id_tag_info else "Accepted")
    return told, sessions.by_transaction("CP16", res.transaction_id)


async def test_store_shrinks_while_the_gateway_keeps_answering(gateway, sessions, outbox, db,
                                                               clock, tmp_path):
    db.execute("PRAGMA synchronous=OFF")                     # filling fast; not under test
    for day in range(150):
        at = NOW - (150 - day) * DAY_S
        clock.t = at
        rec, _ = sessions.start("CP201", 1, "old-%d" % day, "STAFF1", 0, at)
        for i in range(40):
            sessions.add_sample(rec["session_id"], at + 10 * i, 10 * i, [100, 100, 100])
        sessions.stop(rec["session_id"], at + 400, 400, "Local")
    outbox.ack([r.id for r in outbox.pending(10000)])
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    clock.t = NOW
    path = tmp_path / "edge.db"
    grown = path.stat().st_size

    c = await connect(gateway.port, "CP16", "1.6", PW)
    loop = asyncio.get_running_loop()
    mid_pass = []          # sessions charged while the pass was half done
    calls = {"n": 0}

    def between():
        # runs on the worker's thread between two batches: the service must answer now
        calls["n"] += 1
        if calls["n"] == 5:
            fut = asyncio.run_coroutine_threadsafe(_charge(c.cp, sessions, NOW), loop)
            mid_pass.append(fut.result(timeout=30))

    policy = RetentionPolicy(sessions_keep_s=30 * DAY_S, samples_keep_s=7 * DAY_S,
                             batch_rows=200, vacuum_pages=32, pause_s=0)
    worker = RetentionWorker(path, policy, clock=clock, first_after_s=3600)
    worker.between = between
    worker.start()
    worker.run_soon()
    answered = []
    try:
        # and a steady stream of wallbox traffic over the whole pass
        while worker.passes == 0:
            res = await c.cp.call(call.Authorize(id_tag="STAFF1"))
            answered.append(res.id_tag_info["status"])
            await asyncio.sleep(0)
    finally:
        await asyncio.to_thread(worker.stop)
        await c.close()

    assert worker.last["sessions"] == 120 and worker.last["batches"] > 5
    told, rec = mid_pass[0]
    assert told == ["Accepted", "Accepted", "Accepted"]
    assert rec["state"] == "completed" and rec["energy_wh"] == 500
    assert answered and set(answered) == {"Accepted"}
    # the fresh session is queued for the cloud, unacknowledged, and kept
    assert outbox.has_pending_key(rec["session_id"], 0, outbox.last_seq())
    left = db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    assert left == 30 + 1          # the 30 days within the period, and the new one
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("VACUUM INTO ?", (str(tmp_path / "copy.db"),))
    expected = (tmp_path / "copy.db").stat().st_size
    shrunk = path.stat().st_size
    assert shrunk < grown / 2 and shrunk <= expected * 1.2 + 32 * 4096, (grown, shrunk, expected)
