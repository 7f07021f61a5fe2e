import logging
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
logging.getLogger("ocpp").setLevel(logging.CRITICAL)

from edge.core.book import GroupBook  # noqa: E402
from edge.core.topology import Site  # noqa: E402
from edge.lists_holder import ListsHolder  # noqa: E402
from edge.ocpp_gateway import Gateway  # noqa: E402
from edge.store.db import open_db  # noqa: E402
from edge.store.outbox import Outbox  # noqa: E402
from edge.store.sessions import SessionStore  # noqa: E402

NOW = 1748844000   # Monday 2025-06-02 08:00 CEST

SITE = {
    "site_id": "t",
    "timezone": "CET-1CEST,M3.5.0,M10.5.0/3",
    "grid": {"max_current_a": 63, "max_power_w": None, "safety_margin_a": 1},
    "offline_unknown_tokens": "deny",
    "charging_groups": [
        {"id": "garage", "name": "Garage", "max_current_a": 50, "stations": [
            {"id": "CP16", "max_current_a": 32, "connectors": [
                {"id": 1, "phases": 3, "wiring": "L1L2L3", "min_current_a": 6, "max_current_a": 16},
                {"id": 2, "phases": 1, "wiring": "L2", "min_current_a": 6, "max_current_a": 16}]},
            {"id": "CP201", "max_current_a": 32, "connectors": [
                {"id": 1, "phases": 3, "wiring": "L2L3L1", "min_current_a": 6, "max_current_a": 32}]},
            {"id": "OPEN1", "max_current_a": 16, "connectors": [
                {"id": 1, "phases": 1, "wiring": "L3", "max_current_a": 16}]},
        ]},
    ],
}

PASSWORDS = {"CP16": "secret-16", "CP201": "secret-201"}
STATIONS_CFG = {"CP16": {"password": "secret-16", "ocpp_versions": ["1.6"]},
                "CP201": {"password": "secret-201", "ocpp_versions": ["2.0.1"]},
                "OPEN1": {"password": None}}


def _group(gid, kind, active_on, prioritised=False, state="active", tariff=None, windows=None,
           billing="record_only"):
    g = {"id": gid, "name": gid, "kind": kind, "billing": billing, "tariff": tariff,
         "active_on": active_on, "prioritised": prioritised, "state": state}
    if windows is not None:
        g["windows"] = windows
    return g


def _token(uid, groups, status="valid", expires_s=None, provider=None):
    return {"uid": uid, "groups": groups, "status": status, "expires_s": expires_s,
            "driver": None, "provider": provider}


TARIFF = {"currency": "EUR", "energy_m_per_kwh": 400, "parking": None, "monthly_base_m": 0}


def snapshot(version=1, extra_tokens=()):
    return {
        "version": version,
        "groups": [
            _group("g-staff", "drivers", {"site": True}, prioritised=True, tariff=TARIFF,
                   billing="automatic"),
            _group("g-cards", "cards", {"stations": ["CP201"]}),
            _group("g-old", "cards", {"site": True}, state="archived"),
            _group("g-adhoc", "adhoc", {"connectors": [["CP16", 2], ["CP201", 1]]},
                   tariff=TARIFF, billing="automatic"),
            _group("g-roam", "eroaming", {"site": True}, billing="automatic",
                   tariff={"currency": "EUR", "energy_m_per_kwh": 300, "parking": None,
                           "monthly_base_m": 0},
                   windows=[{"days": [6], "start": "09:00", "end": "10:00"}]),
        ],
        "drivers": [],
        "tokens": [
            _token("STAFF1", ["g-staff"]),
            _token("STAFF2", ["g-staff"]),
            _token("CARD1", ["g-cards"]),
            _token("BLOCKED1", ["g-cards"], status="blocked"),
            _token("EXPIRED1", ["g-cards"], expires_s=NOW - 10),
            _token("ARCH1", ["g-old"]),
            _token("DE-ABC-ROAM1", ["g-roam"], provider="DE-ABC"),
        ] + list(extra_tokens),
    }


class Clock:
    def __init__(self, t=NOW):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def site():
    return Site.from_dict(SITE)


@pytest.fixture
def lists(site, clock):
    return ListsHolder(site, GroupBook.from_snapshot(snapshot(), site, "sync", NOW), clock=clock)


@pytest.fixture
def db(tmp_path):
    conn = open_db(tmp_path / "edge.db")
    yield conn
    conn.close()


@pytest.fixture
def outbox(db):
    return Outbox(db)


@pytest.fixture
def sessions(db, outbox, clock):
    return SessionStore(db, outbox=outbox, clock=clock)


@pytest.fixture
def events():
    return []


@pytest.fixture
async def gateway(site, lists, sessions, clock, events):
    gw = Gateway(site, STATIONS_CFG, lists, sessions, clock=clock,
                 on_event=lambda name, body: events.append((name, body)),
                 response_timeout_s=10)
    gw.port = await gw.start("127.0.0.1", 0)
    yield gw
    await gw.stop()
