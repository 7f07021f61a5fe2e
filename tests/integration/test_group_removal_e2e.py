"""The cloud tries to remove a group a car is charging through, end to end.

The whole edge service, a real Mosquitto, the reference cloud peer and simulated
wallboxes (the ocpp library) over websockets. The `groups_remove` delta is refused as a
whole with `group_in_use` (an error record and a snapshot request reach the cloud), the
session finishes with its group and its record reaches the cloud with it; once the cloud
has acknowledged that record, the same removal applies.
"""

import pytest

from edge import config
from edge.service import EdgeService
from host_tools import demo_site
from host_tools.broker import free_port
from host_tools.wallbox_sim.fleet import Fleet
from host_tools.wallbox_sim.model import ConnectorSpec, StationSpec

SITE = demo_site.SITE_ID
V16, V201 = "CP003", "CP004"          # charging group "visitors": g-guests is active there


def _cfg(broker_port: int, ocpp_port: int, store: str) -> config.EdgeConfig:
    d = demo_site.site_config(1, broker_port, store, ocpp_port)
    d["meters"] = []
    d["control"] = {"interval_s": 0.5}
    d["load_management"] = {"failsafe_non_ev_a": 0}
    d["cloud"].update(backoff_base_s=0.2, backoff_cap_s=1.0, drain_poll_s=0.2)
    return config.from_dict(d)


def _stations() -> list:
    return [StationSpec(id=sid, version=v, password=demo_site.PASSWORD,
                        connectors=[ConnectorSpec(c["phases"], c["max_current_a"]) for c in conns],
                        response_delay_s=0.05, meter_interval_s=1)
            for _, sid, v, conns in demo_site.STATIONS if sid in (V16, V201)]


def _remove_guests(base: int, version: int) -> dict:
    """Remove g-guests and its cards, and (in the same delta) add a staff card."""
    return {"base_version": base, "version": version,
            "groups_remove": ["g-guests"], "tokens_remove": ["CARD01", "CARD99"],
            "tokens_upsert": [{"uid": "STAFF09", "groups": ["g-staff"], "status": "valid",
                               "expires_s": None, "driver": None, "provider": None}]}


def _errors(cloud, ref_id):
    return [r["body"] for r in cloud.records_of(SITE, "error") if r["body"]["ref_id"] == ref_id]


async def test_removing_a_group_in_use_is_refused_as_a_whole_and_the_session_keeps_it(
        broker, cloud, tmp_path, until):
    ocpp_port = free_port()
    svc = EdgeService(_cfg(broker.port, ocpp_port, str(tmp_path / "edge.db")))
    await svc.start()
    fleet = Fleet("ws://127.0.0.1:%d" % ocpp_port, _stations(), reconnect_s=0.3)
    try:
        await fleet.start()
        await fleet.wait_connected()
        assert await until(lambda: svc.lists.version == 1 and svc.cloud.online)
        assert await fleet.plug_in(V16, 1, "CARD01", 50000, 16)
        assert await until(lambda: len(svc.sessions.open_sessions()) == 1)
        sid = svc.sessions.open_sessions()[0]["session_id"]
        assert svc.sessions.get(sid)["group_id"] == "g-guests"

        msg = cloud.push_delta(SITE, _remove_guests(1, 2))
        assert await until(lambda: _errors(cloud, msg))
        err = _errors(cloud, msg)[0]
        assert (err["code"], err["value"], err["ref_type"]) == ("group_in_use", "g-guests", "delta")
        assert sid in err["message"]
        assert await until(lambda: any(r.get("ref_id") == msg for r in cloud.snapshot_requests))
        # nothing of the delta applied: not the removal, not the new card
        assert svc.lists.version == 1 and svc.lists.book.group("g-guests") is not None
        assert await fleet.station(V201).authorize("STAFF09") != "Accepted"
        assert await fleet.station(V201).authorize("CARD01") == "Accepted"
        live = [s for s in svc.gateway.live_sessions() if s["session_id"] == sid]
        assert live and live[0]["group_id"] == "g-guests"

        # the car leaves: the session completes with its group, and the cloud gets it so
        fleet.unplug(V16, 1)
        assert await until(lambda: svc.sessions.get(sid)["state"] == "completed")
        assert svc.sessions.get(sid)["group_id"] == "g-guests"
        assert await until(lambda: any(r["body"]["session_id"] == sid
                                       and r["body"]["state"] == "completed"
                                       for r in cloud.records_of(SITE, "session")))
        done = [r["body"] for r in cloud.records_of(SITE, "session")
                if r["body"]["session_id"] == sid and r["body"]["state"] == "completed"][0]
        assert done["group_id"] == "g-guests" and done["refused"] is None
        # acknowledged (the peer acks every batch): nothing references the group any more
        assert await until(lambda: svc.outbox.count() == 0)
        again = cloud.push_delta(SITE, _remove_guests(1, 2))
        assert await until(lambda: svc.lists.version == 2)
        assert svc.lists.book.group("g-guests") is None and _errors(cloud, again) == []
        assert await fleet.station(V201).authorize("STAFF09") == "Accepted"
    finally:
        await fleet.stop()
        await svc.stop()
