"""The free-space floor, end to end: the whole edge service, real Mosquitto, the
reference cloud peer and simulated wallboxes (the ocpp library) over websockets.

Only the disk's free space is injected (``EdgeService(disk_free=...)``). Below the floor
new sessions are refused; the running one keeps its meter values and its stop, its
records reach the cloud; the alarm is raised once and cleared once, in the log, the
event log, the status and as a durable `alarm` record at the cloud.
"""
import base64
import logging

import aiohttp
import pytest

from edge import config, status_text
from edge.service import EdgeService
from edge.store.space import MB
from edge.web.passwords import hash_password
from host_tools import demo_site
from host_tools.broker import free_port
from host_tools.wallbox_sim.fleet import Fleet
from host_tools.wallbox_sim.model import ConnectorSpec, StationSpec

SITE = demo_site.SITE_ID
V16, V201 = "CP003", "CP004"
VIEWER = {"Authorization": "Basic " + base64.b64encode(b"viewer:viewer-secret-pw").decode()}


class Disk:
    def __init__(self) -> None:
        self.free = 8 * 1024 * MB

    def __call__(self, path: str) -> int:
        return self.free


def _cfg(broker_port: int, ocpp_port: int, store: str) -> config.EdgeConfig:
    d = demo_site.site_config(1, broker_port, store, ocpp_port)
    d["meters"] = []
    d["control"] = {"interval_s": 0.5}
    d["load_management"] = {"failsafe_non_ev_a": 0}
    d["cloud"].update(backoff_base_s=0.2, backoff_cap_s=1.0, drain_poll_s=0.2)
    d["store"]["min_free_mb"] = 100
    d["ocpp"]["meter_interval_s"] = 1                   # the edge sets the wallboxes' interval
    d["store"]["retention"] = {"sample_every_s": 0}     # every meter value stored
    d["http"] = {"host": "127.0.0.1", "port": 0,
                 "admin_password_hash": hash_password("admin-secret-pw", log2_n=10),
                 "viewer_password_hash": hash_password("viewer-secret-pw", log2_n=10)}
    return config.from_dict(d)


def _stations() -> list:
    return [StationSpec(id=sid, version=v, password=demo_site.PASSWORD,
                        connectors=[ConnectorSpec(c["phases"], c["max_current_a"]) for c in conns],
                        response_delay_s=0.05, meter_interval_s=1)
            for _, sid, v, conns in demo_site.STATIONS if sid in (V16, V201)]


async def _local(svc, path):
    """What a person sees in the local API (a viewer's login)."""
    async with aiohttp.ClientSession() as http:
        async with http.get("http://127.0.0.1:%d%s" % (svc.http_port, path), headers=VIEWER) as r:
            assert r.status == 200
            return await (r.json() if path.startswith("/api") else r.text())


def _alarms(cloud):
    recs = sorted(cloud.records_of(SITE, "alarm"), key=lambda r: r["id"])
    return [(r["key"], r["body"]["code"], r["body"]["active"]) for r in recs]


async def test_below_the_floor_new_sessions_wait_running_ones_finish_and_the_cloud_knows(
        broker, cloud, tmp_path, until, caplog):
    caplog.set_level(logging.INFO, logger="edge")
    disk = Disk()
    ocpp_port = free_port()
    svc = EdgeService(_cfg(broker.port, ocpp_port, str(tmp_path / "edge.db")), disk_free=disk)
    await svc.start()
    svc.space.every_s = 0                  # read the (injected) free space on every ask
    svc.gateway.sample_flush_s = 0.2
    fleet = Fleet("ws://127.0.0.1:%d" % ocpp_port, _stations(), reconnect_s=0.3)
    try:
        await fleet.start()
        await fleet.wait_connected()
        assert await until(lambda: svc.lists.version == 1 and svc.cloud.online)
        assert await fleet.plug_in(V16, 1, "STAFF01", 50000, 16)
        assert await until(lambda: len(svc.sessions.open_sessions()) == 1)
        sid = svc.sessions.open_sessions()[0]["session_id"]

        disk.free = 99 * MB                 # below the 100 MB floor
        assert await until(lambda: _alarms(cloud) == [("storage_low", "storage_low", True)])
        body = cloud.records_of(SITE, "alarm")[0]["body"]
        assert body["floor_bytes"] == 100 * MB and body["free_bytes"] == 99 * MB
        status = (await _local(svc, "/api/v1/status"))["storage"]
        assert status["low"] is True and status["since_s"] is not None
        assert status["floor_bytes"] == 100 * MB and status["held_stops"] == 0
        events = (await _local(svc, "/api/v1/events?limit=200"))["events"]
        assert [e["active"] for e in events if e["kind"] == "alarm"] == [True]
        assert "edge_storage_low 1.0" in await _local(svc, "/metrics")
        st = await _local(svc, "/api/v1/status")        # `edge status` and `make run` show
        assert "DISK LOW: no new sessions" in status_text.headline(st)
        # a new session is refused at the wallbox (2.0.1 says "not at this time")
        assert await fleet.station(V201).authorize("STAFF02") == "NotAtThisTime"
        assert not await fleet.plug_in(V201, 1, "STAFF02", 5000, 16)
        # the running one goes on: its meter values are stored, then its stop
        stored = len(svc.sessions.samples(sid))
        assert await until(lambda: len(svc.sessions.samples(sid)) >= stored + 2)
        fleet.unplug(V16, 1)
        assert await until(lambda: svc.sessions.get(sid)["state"] == "completed")
        rec = svc.sessions.get(sid)
        assert rec["stop_reason"] and rec["stopped_s"] is not None
        registers = [s["energy_wh"] for s in svc.sessions.samples(sid) if s["energy_wh"] is not None]
        assert registers and rec["meter_stop_wh"] >= max(registers)
        assert rec["group_id"] == "g-staff" and rec["refused"] is None
        assert await until(lambda: any(r["body"]["session_id"] == sid
                                       and r["body"]["state"] == "completed"
                                       for r in cloud.records_of(SITE, "session")))
        assert [s["session_id"] for s in svc.sessions.open_sessions()] == []

        disk.free = 101 * MB                # space came back
        assert await until(lambda: len(_alarms(cloud)) == 2)
        assert _alarms(cloud)[1] == ("storage_low", "storage_low", False)
        assert (await _local(svc, "/api/v1/status"))["storage"]["low"] is False
        assert "edge_storage_low 0.0" in await _local(svc, "/metrics")
        assert "DISK" not in status_text.headline(await _local(svc, "/api/v1/status"))
        fleet.unplug(V201, 1)               # the refused driver tries again
        assert await fleet.plug_in(V201, 1, "STAFF02", 5000, 16)

        # once per incident: one alarm and one clear, wherever it is shown
        events = (await _local(svc, "/api/v1/events?limit=200"))["events"]
        assert [e["active"] for e in reversed(events) if e["kind"] == "alarm"] == [True, False]
        assert len(_alarms(cloud)) == 2
        said = [r for r in caplog.records if "below the floor" in r.getMessage()]
        assert len(said) == 1 and said[0].levelno == logging.WARNING
    finally:
        await fleet.stop()
        await svc.stop()
