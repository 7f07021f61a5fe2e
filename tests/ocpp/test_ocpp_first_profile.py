"""The first profile a new transaction gets is its own allocation, never a limit decided
before it existed."""
from ocpp.v16 import call as call16
from ocpp_testdata import NOW
from ocpp_wallbox import connect, ts, until


def _tx_limits(cp, tx):
    return [p["profile"]["charging_schedule"]["charging_schedule_period"][0]["limit"]
            for p in cp.calls("SetChargingProfile")
            if p["profile"].get("transaction_id") == tx]


async def test_session_started_during_boot_is_not_sent_the_idle_connectors_zero(gateway):
    # the last cycle ran while the connector was idle: 0 A there
    await gateway.apply_limits({("CP16", 1): (0, 3), ("CP16", 2): (0, 1)})
    c = await connect(gateway.port, "CP16", "1.6", "secret-16", boot=False)
    cp = c.cp
    assert (await cp.boot()).status == "Accepted"
    res = await cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1",
                                                meter_start=0, timestamp=ts(NOW)))
    tx = res.transaction_id
    await until(lambda: ("CP16", "boot") not in gateway._running)   # post-boot done
    await gateway.apply_limits({("CP16", 1): (160, 3), ("CP16", 2): (0, 1)})
    assert _tx_limits(cp, tx) == [16]
    await c.close()


async def test_a_running_session_gets_its_last_limit_again_after_a_reboot(gateway):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    res = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1",
                                                  meter_start=0, timestamp=ts(NOW)))
    await gateway.apply_limits({("CP16", 1): (120, 3)})
    assert _tx_limits(c.cp, res.transaction_id) == [12]
    await c.close()
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")   # rebooted, same tx
    await until(lambda: ("CP16", "boot") not in gateway._running)
    assert _tx_limits(c.cp, res.transaction_id) == [12]
    await c.close()
