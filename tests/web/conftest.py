"""A running site for the local API tests: the edge service with its HTTP server on a
free port, a Modbus TCP grid meter (pymodbus simulator), three OCPP wallboxes, and
the demo's lists applied locally (no broker: the API does not need the cloud)."""
from __future__ import annotations

import asyncio
import base64
import time

import pytest

from edge import config
from edge.core.book import GroupBook
from edge.service import EdgeService
from edge.web.passwords import hash_password
from host_tools import demo_site
from host_tools.sim_meter import SimMeter
from host_tools.wallbox_sim.fleet import Fleet
from host_tools.wallbox_sim.model import ConnectorSpec, StationSpec

ADMIN_PW = "admin-secret-pw"
VIEWER_PW = "viewer-secret-pw"
BUILDING_A = (9.0, 6.0, 12.0)


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()}


ADMIN = basic("admin", ADMIN_PW)
VIEWER = basic("viewer", VIEWER_PW)


async def wait_until(predicate, timeout_s: float = 20.0, step_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step_s)
    return bool(predicate())


class Site:
    def __init__(self, svc: EdgeService, fleet: Fleet, meter: SimMeter) -> None:
        self.svc = svc
        self.fleet = fleet
        self.meter = meter

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.svc.http_port


def _meter_values(site: dict) -> dict:
    cur = list(BUILDING_A)
    fleet = site.get("fleet")
    if fleet is not None:
        for row in fleet.snapshot():
            if row["drawn_a"] and row["phases"]:
                wiring = site["cfg"].site.connector(row["station"], row["connector"]).wiring
                for p in wiring[:row["phases"]]:
                    cur[p] += row["drawn_a"]
    cur = [round(a, 2) for a in cur]
    return {"voltage_v": [230.0] * 3, "current_a": cur, "phase_power_w": [round(a * 230, 1) for a in cur],
            "power_w": round(sum(cur) * 230, 1), "import_wh": 1000, "export_wh": 0}


async def start_site(tmp_path, stations: int = 3, tls: tuple | None = None) -> Site:
    holder: dict = {}
    meter = SimMeter("eastron_sdm630", values_provider=lambda: _meter_values(holder))
    meter_port = await meter.start()
    d = demo_site.site_config(meter_port, 1, str(tmp_path / "edge.db"))
    del d["cloud"]
    d["control"]["interval_s"] = 0.5
    d["http"] = {"host": "127.0.0.1", "port": 0,
                 "admin_password_hash": hash_password(ADMIN_PW, log2_n=10),
                 "viewer_password_hash": hash_password(VIEWER_PW, log2_n=10)}
    if tls is not None:
        d["http"].update(tls_cert=tls[0], tls_key=tls[1])
    cfg = config.from_dict(d)
    holder["cfg"] = cfg
    svc = EdgeService(cfg)
    await svc.start()
    now = int(time.time())
    book = GroupBook.from_snapshot(demo_site.cloud_snapshot(), cfg.site, by="sync", now_s=now)
    book = book.rename_group("g-staff", "Staff (all)", by="admin", now_s=now + 1)
    svc.lists.replace(book)
    specs = [StationSpec(id=sid, version=v, password=demo_site.PASSWORD,
                         connectors=[ConnectorSpec(c["phases"], c["max_current_a"]) for c in conns],
                         response_delay_s=0.1, meter_interval_s=1)
             for _, sid, v, conns in demo_site.STATIONS[:stations]]
    fleet = Fleet("ws://127.0.0.1:%d" % svc.ocpp_port, specs)
    await fleet.start()
    holder["fleet"] = fleet
    if specs:
        await fleet.wait_connected()
    return Site(svc, fleet, meter)


async def stop_site(site: Site) -> None:
    await site.fleet.stop()
    await site.svc.stop()
    await site.meter.stop()


@pytest.fixture
async def site(tmp_path):
    s = await start_site(tmp_path)
    try:
        yield s
    finally:
        await stop_site(s)
