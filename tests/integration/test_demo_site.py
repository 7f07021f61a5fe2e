"""The whole simulated site of `make run`, driven step by step: real Mosquitto, a
real Modbus TCP meter, real OCPP wallboxes (1.6J and 2.0.1) and the edge service."""
import time

import pytest

from host_tools import demo_site
from host_tools.demo_display import render
from host_tools.site_demo import Demo


@pytest.fixture
async def demo(tmp_path):
    d = Demo(seed=3, response_delay_s=0.2)
    await d.start(tmp_path)
    try:
        yield d
    finally:
        await d.stop()


def limit_of(demo, station):
    last = demo.service.last
    return None if last is None else last.limits.get((station, 1), (None, None))[0]


async def test_whole_site_prioritises_records_and_syncs(demo, until):
    wait_until = until
    svc = demo.service
    assert await wait_until(lambda: svc.lists.version == 1), "the edge never got the cloud's lists"

    assert await demo.arrive("CP001", "FLEET01", 40000, 16, 3)
    assert await demo.arrive("CP004", "STAFF02", 20000, 32, 1)
    assert not await demo.arrive("CP002", "CARD99", 20000, 16, 3), "a blocked card charged"
    assert not await demo.arrive("CP002", "NOBODY", 20000, 16, 3), "an unknown token charged"
    assert any("CARD99 plugs in at CP002: REFUSED: token_blocked" in e for e in demo.events), demo.events

    # The prioritised fleet car gets its full 16 A while the building leaves room;
    # the wallboxes receive and obey what the allocation decided.
    assert await wait_until(lambda: limit_of(demo, "CP001") == 160), render(demo)
    assert await wait_until(lambda: demo.fleet.connector("CP001", 1).limit_a == 16.0), render(demo)
    assert await wait_until(lambda: demo.fleet.connector("CP004", 1).limit_a is not None)
    assert demo.fleet.connector("CP004", 1).limit_a * 10 <= limit_of(demo, "CP004") + 1

    # The cloud sees the stations (retained status) and what was allocated (telemetry).
    assert await wait_until(lambda: any(st["id"] == "CP001" and st["connectors"][0]["status"] == "Charging"
                                        for st in demo.peer.status.get(demo_site.SITE_ID, {}).get("stations", [])))
    # ... as one full status after connecting, then only deltas of the stations that changed.
    sent = [b for b in demo.peer.status_log if b["site"] == demo_site.SITE_ID]
    assert sent[0]["full"] and len(sent[0]["stations"]) == len(demo_site.STATIONS)
    assert sent[1:] and not any(b["full"] for b in sent[1:]) and demo.peer.gaps == 0
    assert await wait_until(lambda: any(a["station"] == "CP001" and a["limit_da"] == 160 and a["session_id"]
                                        for t in demo.peer.telemetry for a in t.get("allocations", [])), 15)

    # eRoaming: a partner's customer in no list is authorized online by the cloud.
    assert await demo.roam("CP006", 2), demo.events
    assert await wait_until(lambda: any(s["key"] == ("CP006", 1) and s["group_id"] == "g-roam"
                                        for s in svc.gateway.live_sessions())), render(demo)
    demo.fleet.unplug("CP006", 1)
    assert await wait_until(lambda: not any(s["key"] == ("CP006", 1) for s in svc.gateway.live_sessions()))

    # Ad hoc: paid in the cloud, started remotely, recorded in the ad hoc group.
    await demo.ad_hoc("CP006")
    assert await wait_until(lambda: any(s["key"] == ("CP006", 1) and s["group_id"] == "g-adhoc"
                                        for s in svc.gateway.live_sessions())), render(demo)

    # A grid operator's cap reaches the allocation and binds every phase.
    await demo.curtail(150, 60)
    assert await wait_until(lambda: svc.last.status.get("site_limit_da") == 150), render(demo)
    assert await wait_until(lambda: sum(v[0] for v in svc.last.limits.values()) <= 3 * 150), render(demo)

    # Sessions end; every start and stop record reaches the cloud and is acknowledged.
    demo.fleet.unplug("CP001", 1)
    demo.fleet.unplug("CP004", 1)
    assert await wait_until(lambda: len(svc.sessions.open_sessions()) == 1, 20), render(demo)
    assert await wait_until(lambda: svc.outbox.count() == 0, 20)
    recs = demo.peer.records_of(demo_site.SITE_ID)
    completed = [r for r in recs if r.get("body", r).get("state") == "completed"]
    assert len(completed) == 3, recs
    assert demo.peer.duplicates == 0
    tokens = {r.get("body", r).get("token") for r in completed}
    assert tokens == {"FLEET01", "STAFF02", sorted(demo_site.ROAMING)[0]}
