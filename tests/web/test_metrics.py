"""/metrics, read with prometheus_client's own parser, agrees with the status API."""
from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.web.conftest import VIEWER, wait_until


def _samples(text: str) -> dict:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_match_the_status_api(site):
    svc = site.svc
    assert await site.fleet.plug_in("CP001", 1, "FLEET01", 30000, 16)
    assert await wait_until(lambda: svc.last is not None and svc.last.limits[("CP001", 1)][0] > 0
                            and svc.cycles > 3)
    # The meter and the cars keep moving: stop the control loop so both reads see one state.
    svc._stopping.set()
    await svc._task
    site.meter.values_provider = None
    async with aiohttp.ClientSession() as http:
        async with http.get(site.url + "/metrics", headers={}) as r:
            assert r.status == 401
        async with http.get(site.url + "/metrics", headers=VIEWER) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            m = _samples(await r.text())
        async with http.get(site.url + "/api/v1/status", headers=VIEWER) as r:
            st = await r.json()
        async with http.get(site.url + "/api/v1/connectors", headers=VIEWER) as r:
            conns = (await r.json())["connectors"]
    for p in st["phases"]:
        ph = (("phase", p["phase"]),)
        assert m[("edge_phase_grid_amperes", ph)] == p["grid_da"] / 10
        assert m[("edge_phase_limit_amperes", ph)] == p["limit_da"] / 10
        assert m[("edge_phase_building_amperes", ph)] == p["building_da"] / 10
        assert m[("edge_phase_ev_amperes", ph)] == p["ev_da"] / 10
        assert m[("edge_phase_headroom_amperes", ph)] == p["headroom_da"] / 10
        assert m[("edge_phase_overshoot", ph)] == (1.0 if p["overshoot"] else 0.0)
    for c in conns:
        key = (("connector", str(c["connector"])), ("station", c["station"]))
        assert m[("edge_connector_allocated_amperes", key)] == c["allocated_da"] / 10
        if c["drawn_da"]:
            assert m[("edge_connector_drawn_amperes", key)] == max(c["drawn_da"]) / 10
    assert m[("edge_connector_allocated_amperes", (("connector", "1"), ("station", "CP001")))] > 0
    assert m[("edge_allocation_mode", (("mode", st["allocation"]["mode"]),))] == 1.0
    assert m[("edge_outbox_records", ())] == st["outbox"]["pending"]
    assert m[("edge_cloud_online", ())] == 0.0
    assert m[("edge_sessions", (("state", "started"),))] == 1
    assert 0 <= m[("edge_meter_age_seconds", ())] < 10
    # Every step was timed; the histogram's count is the number of steps.
    assert m[("edge_control_step_seconds_count", ())] == svc.cycles
    assert m[("edge_ocpp_messages_total", (("action", "BootNotification"),))] == 3
    assert m[("edge_ocpp_messages_total", (("action", "StartTransaction"),))] == 1
    # three wallboxes started: handshakes, boots, after-boot calls went through the pacer
    assert m[("edge_ocpp_startup_pieces_total", ())] == svc.gateway.startup.granted >= 3 * 5
    assert m[("edge_ocpp_startup_waiting", ())] == 0
