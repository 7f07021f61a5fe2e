"""Sample site and cloud lists for the cloud data-plane tests."""
from __future__ import annotations

import copy

from edge.core.topology import Site

SITE_ID = "demo"


class Clock:
    def __init__(self, now: float = 1_763_900_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Rng:
    """Deterministic stand-in for os.urandom: the outbox instance id."""

    def __init__(self, seed: int = 0xA1B2C3D4) -> None:
        self.seed = seed

    def __call__(self, n: int) -> bytes:
        return self.seed.to_bytes(n, "big")

SITE_DICT = {
    "site_id": SITE_ID,
    "timezone": "CET-1CEST,M3.5.0,M10.5.0/3",
    "grid": {"max_current_a": 63, "max_power_w": None, "safety_margin_a": 1},
    "offline_unknown_tokens": "deny",
    "charging_groups": [
        {"id": "garage", "name": "Garage", "max_current_a": 50,
         "stations": [
             {"id": "CP001", "max_current_a": 32,
              "connectors": [{"id": 1, "phases": 3, "wiring": "L1L2L3", "min_current_a": 6,
                              "max_current_a": 16, "can_switch_phases": False}]},
             {"id": "CP002", "max_current_a": 32,
              "connectors": [{"id": 1, "phases": 3, "wiring": "L2L3L1", "min_current_a": 6,
                              "max_current_a": 16, "can_switch_phases": False}]},
         ]},
    ],
}


def make_site() -> Site:
    return Site.from_dict(copy.deepcopy(SITE_DICT))


STAFF = {"id": "g-staff", "name": "Staff", "kind": "drivers", "billing": "automatic",
         "tariff": {"currency": "EUR", "energy_m_per_kwh": 350,
                    "parking": {"m_per_period": 500, "period_s": 3600, "free_s": 7200, "cap_m": 5000},
                    "monthly_base_m": 0},
         "active_on": {"site": False, "charging_groups": ["garage"], "stations": [], "connectors": []},
         "prioritised": True, "state": "active", "windows": []}

GUESTS = {"id": "g-guests", "name": "Guests", "kind": "cards", "billing": "record_only",
          "tariff": None,
          "active_on": {"site": False, "charging_groups": [], "stations": ["CP002"], "connectors": []},
          "prioritised": False, "state": "active", "windows": []}


def token(i: int, group: str = "g-staff", status: str = "valid", driver=None) -> dict:
    return {"uid": "T%09d" % i, "groups": [group], "status": status, "expires_s": None,
            "driver": driver, "provider": None}


def snapshot(version: int = 1, n_tokens: int = 10) -> dict:
    drivers = [{"id": "d-%d" % i, "name": "Driver %d" % i, "group": "g-staff"} for i in range(3)]
    tokens = [token(i, "g-staff" if i % 2 == 0 else "g-guests",
                    driver="d-%d" % (i % 3) if i % 2 == 0 else None) for i in range(n_tokens)]
    return {"version": version, "groups": [copy.deepcopy(STAFF), copy.deepcopy(GUESTS)],
            "drivers": drivers, "tokens": tokens}


def delta(base: int, version: int, add=(), remove=(), block=()) -> dict:
    ups = [token(i, "g-guests") for i in add] + [token(i, "g-guests", status="blocked") for i in block]
    return {"base_version": base, "version": version,
            "groups_upsert": [], "groups_remove": [], "drivers_upsert": [], "drivers_remove": [],
            "tokens_upsert": ups, "tokens_remove": ["T%09d" % i for i in remove]}
