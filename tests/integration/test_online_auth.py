"""eRoaming for real: an unknown token is asked of the cloud while the link is up.

Real Mosquitto, the reference cloud peer as the roaming hub, the whole edge service
and real OCPP wallboxes (1.6 and 2.0.1) over websockets. The edge's clock is shifted
by the test to pass an authorization's expiry without waiting for it.
"""
import asyncio
import copy
import logging

import pytest

from edge import config
from edge.service import EdgeService
from host_tools import demo_site
from host_tools.broker import free_port
from host_tools.cloud_peer import CloudPeer
from host_tools.wallbox_sim.fleet import Fleet
from host_tools.wallbox_sim.model import ConnectorSpec, StationSpec

SITE = demo_site.SITE_ID
# CP003 (1.6) and CP004 (2.0.1) are in charging group "visitors", CP006 (2.0.1) in "public".
V16, V201, PUBLIC = "CP003", "CP004", "CP006"


class ShiftedClock:
    def __init__(self) -> None:
        import time
        self._time = time.time
        self.shift_s = 0.0

    def __call__(self) -> float:
        return self._time() + self.shift_s


def roaming_snapshot() -> dict:
    snap = demo_site.cloud_snapshot()
    roam = next(g for g in snap["groups"] if g["kind"] == "eroaming")
    roam["active_on"] = {"site": False, "charging_groups": ["public", "visitors"], "stations": [],
                         "connectors": []}
    roam["providers"] = [{"id": "DE*ABC", "active_on": None},
                         {"id": "DE*XYZ", "active_on": {"charging_groups": ["public"]}}]
    return snap


def edge_cfg(broker_port: int, ocpp_port: int, store: str, offline_policy: str = "deny",
             **cloud) -> config.EdgeConfig:
    d = demo_site.site_config(1, broker_port, store, ocpp_port)
    d["site"]["offline_unknown_tokens"] = offline_policy
    d["meters"] = []
    d["control"] = {"interval_s": 0.5}
    d["load_management"] = {"failsafe_non_ev_a": 0}
    d["cloud"].update(backoff_base_s=0.2, backoff_cap_s=1.0, **cloud)
    return config.from_dict(d)


def stations() -> list:
    return [StationSpec(id=sid, version=v, password=demo_site.PASSWORD,
                        connectors=[ConnectorSpec(c["phases"], c["max_current_a"]) for c in conns],
                        response_delay_s=0.1, meter_interval_s=2)
            for _, sid, v, conns in demo_site.STATIONS if sid in (V16, V201, PUBLIC)]


@pytest.fixture
def hub(broker):
    p = CloudPeer(port=broker.port, client_id="roaming-hub")
    p.serve_snapshot[SITE] = roaming_snapshot()
    p.roaming["ROAMABC1"] = {"provider": "DE*ABC", "valid_s": 600}
    p.roaming["ROAMABC2"] = {"provider": "de-abc", "valid_s": 600}
    p.roaming["ROAMXYZ1"] = {"provider": "DE*XYZ", "valid_s": 600}
    p.roaming["ROAMNOPE"] = {"provider": "FR*NOP", "valid_s": 600}
    p.roaming["ROAMSLOW"] = {"provider": "DE*ABC", "valid_s": 600}
    p.start()
    yield p
    p.stop()


class Site:
    def __init__(self, svc, fleet, clock):
        self.svc, self.fleet, self.clock = svc, fleet, clock

    async def tap(self, station: str, token: str) -> str:
        """A driver holds a card to the wallbox: its Authorize answer (wire status)."""
        return await self.fleet.station(station).authorize(token)


async def _site(broker, tmp_path, until, offline_policy="deny", **cloud):
    clock = ShiftedClock()
    ocpp_port = free_port()
    svc = EdgeService(edge_cfg(broker.port, ocpp_port, str(tmp_path / "edge.db"), offline_policy,
                               **cloud), clock=clock)
    await svc.start()
    fleet = Fleet("ws://127.0.0.1:%d" % ocpp_port, stations(), reconnect_s=0.3)
    await fleet.start()
    await fleet.wait_connected()
    assert await until(lambda: svc.lists.version == 1 and svc.cloud.online)
    return Site(svc, fleet, clock)


async def _close(site):
    await site.fleet.stop()
    await site.svc.stop()


async def test_unknown_roaming_token_online_then_cached_offline_then_expired(broker, hub, tmp_path, until):
    site = await _site(broker, tmp_path, until)
    try:
        # Online: both protocol versions, answered from the cloud within the deadline.
        assert await site.tap(V16, "ROAMABC1") == "Accepted"
        assert await site.tap(V201, "roamabc2") == "Accepted"
        assert len(hub.auth_requests) == 2
        # Sessions started with them (StartTransaction, TransactionEvent) are billed
        # through the eRoaming group.
        assert await site.fleet.plug_in(V16, 1, "ROAMABC1", 5000, 16)
        assert await site.fleet.plug_in(V201, 1, "ROAMABC2", 5000, 16, phases=1)
        assert await until(lambda: len(site.svc.sessions.open_sessions()) == 2)
        for rec in site.svc.sessions.open_sessions():
            assert rec["group_id"] == "g-roam" and rec["tariff"]["energy_m_per_kwh"] == 390
            assert not rec["refused"]
        site.fleet.unplug(V16, 1)
        site.fleet.unplug(V201, 1)
        assert await until(lambda: not site.svc.sessions.open_sessions())
        assert len(hub.auth_requests) == 2          # the starts were decided from the cache

        # The link goes down: the cached answers carry on; an unknown token meets the
        # offline policy (deny).
        broker.stop()
        assert await until(lambda: not site.svc.cloud.online)
        assert await site.tap(V16, "ROAMABC1") == "Accepted"
        assert await site.tap(V201, "ROAMABC2") == "Accepted"
        assert await site.tap(V16, "ROAMXYZ9") == "Invalid"

        # Past the expiry the cache no longer vouches for it.
        site.clock.shift_s = 601
        assert await site.tap(V16, "ROAMABC1") == "Invalid"
        assert await site.tap(V201, "ROAMABC2") != "Accepted"
    finally:
        await _close(site)


async def test_cache_survives_an_edge_restart(broker, hub, tmp_path, until):
    site = await _site(broker, tmp_path, until)
    try:
        assert await site.tap(V201, "ROAMABC1") == "Accepted"
    finally:
        await _close(site)
    broker.stop()
    site = await _site_offline(broker, tmp_path, until)
    try:
        assert await site.tap(V201, "ROAMABC1") == "Accepted"
        assert await site.tap(V201, "ROAMABC2") != "Accepted"
    finally:
        await _close(site)


async def _site_offline(broker, tmp_path, until):
    clock = ShiftedClock()
    ocpp_port = free_port()
    svc = EdgeService(edge_cfg(broker.port, ocpp_port, str(tmp_path / "edge.db")), clock=clock)
    await svc.start()
    fleet = Fleet("ws://127.0.0.1:%d" % ocpp_port, stations(), reconnect_s=0.3)
    await fleet.start()
    await fleet.wait_connected()
    assert svc.lists.version == 1 and not svc.cloud.online
    return Site(svc, fleet, clock)


async def test_providers_not_allowed_are_refused_with_their_reason(broker, hub, tmp_path, until, caplog):
    site = await _site(broker, tmp_path, until)
    caplog.set_level(logging.INFO, logger="edge.ocpp_gateway.logic")
    try:
        # DE*XYZ may charge only in "public": accepted there, refused in "visitors".
        assert await site.tap(PUBLIC, "ROAMXYZ1") == "Accepted"
        assert await site.tap(V201, "ROAMXYZ1") == "NotAtThisLocation"
        assert await site.tap(V16, "ROAMXYZ1") == "Invalid"
        # FR*NOP is not a partner of this site's eRoaming group: the hub refuses it.
        assert await site.tap(V201, "ROAMNOPE") == "NotAtThisLocation"
        refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert sum("ROAMXYZ1" in m and "provider_not_allowed" in m for m in refusals) == 2, refusals
        assert any("ROAMNOPE" in m and "provider_not_allowed" in m for m in refusals), refusals
    finally:
        await _close(site)


async def test_slow_cloud_falls_back_to_the_offline_policy(broker, hub, tmp_path, until):
    site = await _site(broker, tmp_path, until, auth_deadline_s=0.5)
    hub.auth_delay_s = 1.5
    try:
        # The hub would accept, but not in time: the site's policy (deny) decides.
        assert await site.tap(V201, "ROAMSLOW") == "Unknown"
        assert len(hub.auth_requests) == 1
        # The late answer is kept: the driver's next attempt is accepted from the cache.
        assert await until(lambda: site.svc.authorizer.known_answer("ROAMSLOW", int(site.clock())) is not None)
        assert await site.tap(V16, "ROAMSLOW") == "Accepted"
        assert len(hub.auth_requests) == 1
    finally:
        await _close(site)


async def test_slow_cloud_and_dead_link_follow_an_accepting_policy(broker, hub, tmp_path, until):
    site = await _site(broker, tmp_path, until, offline_policy="accept", auth_deadline_s=0.5)
    hub.auth_silent = True
    try:
        # The hub would refuse this token (unknown), but never answers: the policy accepts.
        assert await site.tap(V201, "NOBODY01") == "Accepted"
        assert len(hub.auth_requests) == 1
        assert await site.fleet.plug_in(V16, 1, "NOBODY02", 5000, 16)
        assert len(hub.auth_requests) == 2     # StartTransaction did not ask (and wait) again
        assert await until(lambda: len(site.svc.sessions.open_sessions()) == 1)
        [rec] = site.svc.sessions.open_sessions()
        assert rec["group_id"] is None and rec["tariff"] is None and not rec["refused"]
        broker.stop()
        assert await until(lambda: not site.svc.cloud.online)
        asked = len(hub.auth_requests)
        assert await site.tap(V201, "NOBODY03") == "Accepted"       # dead link: not even asked
        assert site.svc.cloud.auth.sent == asked
    finally:
        await _close(site)


async def test_a_burst_of_unknown_tokens_keeps_to_the_request_limit(broker, hub, tmp_path, until):
    site = await _site(broker, tmp_path, until, auth_max_in_flight=4, auth_deadline_s=1.0)
    hub.auth_delay_s = 0.02
    try:
        decisions = await asyncio.gather(*(site.svc.authorizer.authorize("BURST%04d" % i, V16, 1)
                                           for i in range(1000)))
        assert len(decisions) == 1000 and not any(d.accepted for d in decisions)
        assert {d.reason for d in decisions} <= {"unknown_token"}
        asked = site.svc.cloud.auth
        assert 1 <= asked.sent <= 1000 and asked.peak_in_flight <= 4
        assert hub.auth_peak <= 4
        assert await until(lambda: len(hub.auth_requests) == asked.sent)
        # Refusals are remembered briefly: the same burst again asks the cloud no more.
        before = asked.sent
        answered = [("BURST%04d" % i) for i in range(1000)
                    if site.svc.authorizer.known_answer("BURST%04d" % i, int(site.clock()))]
        again = await asyncio.gather(*(site.svc.authorizer.authorize(t, V16, 1) for t in answered))
        assert not any(d.accepted for d in again) and asked.sent == before
    finally:
        await _close(site)
