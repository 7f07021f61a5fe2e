"""The internet goes away: the site keeps charging from its last lists, records every
session, survives an edge restart while offline, and delivers everything, once, when
the broker is back. Real Mosquitto, real OCPP wallboxes, the whole edge service."""

import pytest

from edge import config
from edge.service import EdgeService
from host_tools import demo_site
from host_tools.broker import free_port
from host_tools.cloud_peer import CloudPeer
from host_tools.wallbox_sim.fleet import Fleet
from host_tools.wallbox_sim.model import ConnectorSpec, StationSpec

SITE = demo_site.SITE_ID


def site_cfg(broker_port: int, ocpp_port: int, store: str) -> config.EdgeConfig:
    d = demo_site.site_config(1, broker_port, store, ocpp_port)
    d["meters"] = []                    # no meter: fail-safe budget, which leaves room here
    d["control"] = {"interval_s": 0.5}
    d["load_management"] = {"failsafe_non_ev_a": 0}
    d["cloud"].update(resend_after_s=2.0, backoff_base_s=0.2, backoff_cap_s=1.0)
    return config.from_dict(d)


@pytest.fixture
def peer(broker):
    holder = {}

    def answer(site, msg_type, body):
        if msg_type == "snapshot_request":
            holder["peer"].send(site, "snapshot", demo_site.cloud_snapshot(), "lists", wait=False)

    p = CloudPeer(port=broker.port, client_id="offline-cloud", on_event=answer)
    holder["peer"] = p
    p.start()
    yield p
    p.stop()


def stations():
    return [StationSpec(id=sid, version=v, password=demo_site.PASSWORD,
                        connectors=[ConnectorSpec(c["phases"], c["max_current_a"]) for c in conns],
                        response_delay_s=0.1, meter_interval_s=2)
            for _, sid, v, conns in demo_site.STATIONS[:3]]


async def test_offline_charging_restart_and_delivery(broker, peer, tmp_path, until):
    ocpp_port = free_port()
    cfg = site_cfg(broker.port, ocpp_port, str(tmp_path / "edge.db"))
    svc = EdgeService(cfg)
    await svc.start()
    fleet = Fleet("ws://127.0.0.1:%d" % ocpp_port, stations(), reconnect_s=0.3)
    await fleet.start()
    try:
        await fleet.wait_connected()
        assert await until(lambda: svc.lists.version == 1 and svc.cloud.online)

        broker.stop()
        assert await until(lambda: not svc.cloud.online)

        # Offline: the last lists decide; unknown tokens follow the site policy (deny).
        assert await fleet.plug_in("CP001", 1, "STAFF01", 30000, 16)
        assert await fleet.plug_in("CP003", 1, "FLEET01", 30000, 16)
        assert not await fleet.plug_in("CP002", 1, "NOBODY", 30000, 16)
        fleet.unplug("CP002", 1)
        assert not await fleet.plug_in("CP002", 1, "CARD99", 30000, 16)
        fleet.unplug("CP002", 1)
        assert await until(lambda: len(svc.sessions.open_sessions()) == 2)
        fleet.unplug("CP001", 1)
        assert await until(lambda: len(svc.sessions.open_sessions()) == 1)
        queued = svc.outbox.count()
        assert queued >= 3          # two starts and one stop at least, nothing sent
        assert peer.record_count(SITE) == 0

        # The edge restarts while still offline: lists and queue come back from disk.
        await svc.stop()
        svc = EdgeService(site_cfg(broker.port, ocpp_port, str(tmp_path / "edge.db")))
        await svc.start()
        assert svc.lists.version == 1
        assert svc.outbox.count() == queued
        await fleet.wait_connected()
        assert await until(lambda: all(st.online for st in fleet.stations.values()), 15)
        assert await fleet.plug_in("CP002", 1, "STAFF02", 30000, 32, phases=1)
        fleet.unplug("CP002", 1)
        fleet.unplug("CP003", 1)
        assert await until(lambda: not svc.sessions.open_sessions(), 15)

        broker.start()
        assert await until(lambda: svc.outbox.count() == 0, 30), svc.outbox.count()
        completed = [r for r in peer.records_of(SITE) if r.get("body", r).get("state") == "completed"]
        assert sorted(r.get("body", r)["token"] for r in completed) == ["FLEET01", "STAFF01", "STAFF02"]
        ids = [r.get("body", r)["session_id"] for r in completed]
        assert len(set(ids)) == 3
        # Nothing billed twice: one start and one completion record per session.
        states = sorted((r.get("body", r)["session_id"], r.get("body", r)["state"])
                        for r in peer.records_of(SITE, "session"))
        assert states == sorted((sid, st) for sid in ids for st in ("started", "completed")), states
    finally:
        await fleet.stop()
        await svc.stop()
