"""A small site and cloud lists for the end-to-end tests (protocol shapes of
docs/cloud-protocol.md)."""
from __future__ import annotations

import copy

SITE_ID = "demo"

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
         ]},
    ],
}

STAFF = {"id": "g-staff", "name": "Staff", "kind": "drivers", "billing": "automatic",
         "tariff": {"currency": "EUR", "energy_m_per_kwh": 350, "parking": None,
                    "monthly_base_m": 0},
         "active_on": {"site": True, "charging_groups": [], "stations": [], "connectors": []},
         "prioritised": True, "state": "active", "windows": []}


def token(uid: str, status: str = "valid") -> dict:
    return {"uid": uid, "groups": ["g-staff"], "status": status, "expires_s": None,
            "driver": None, "provider": None}


def snapshot(version: int, uids=("AA01", "AA02")) -> dict:
    return {"version": version, "groups": [copy.deepcopy(STAFF)], "drivers": [],
            "tokens": [token(u) for u in uids]}


def delta(base: int, version: int, add=(), remove=()) -> dict:
    return {"base_version": base, "version": version,
            "tokens_upsert": [token(u) for u in add], "tokens_remove": list(remove)}


def session_record(n: int, state: str) -> dict:
    """A session record body as SessionStore writes it (docs/architecture.md)."""
    done = state == "completed"
    return {"session_id": "s-demo-%06d" % n, "station": "CP001", "connector": 1,
            "transaction_id": str(n), "token": "AA01", "payment_ref": None,
            "group_id": "g-staff", "started_s": 1_763_890_000 + n,
            "stopped_s": 1_763_893_600 + n if done else None,
            "meter_start_wh": 1000 * n, "meter_stop_wh": 1000 * n + 7400 if done else None,
            "energy_wh": 7400 if done else None,
            "tariff": {"currency": "EUR", "energy_m_per_kwh": 350, "parking": None,
                       "monthly_base_m": 0},
            "cost": {"energy_m": 2590, "parking_m": 0, "total_m": 2590} if done else None,
            "stop_reason": "EVDisconnected" if done else None, "state": state,
            "reported_late": False}
