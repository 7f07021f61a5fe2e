"""Shared test data for tests/ocpp (a uniquely named module: every test directory has
its own conftest, so ``from conftest import ...`` would pick whichever loaded first)."""
from __future__ import annotations

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
