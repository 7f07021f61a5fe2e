"""The simulated site of `make run`: its configuration and the cloud's lists for it.

Tight on purpose: a 32 A grid connection with a swinging building load, so the
allocation has to share, prioritise and pause.
"""
from __future__ import annotations

SITE_ID = "demo"
# Partner tokens the cloud (as roaming hub) vouches for: uid -> provider (EMP)
ROAMING = {"DE8ACC0000001": "DE*ACC", "DE8ACC0000002": "DE*ACC"}
PASSWORD = "demo-station-secret-123"


def _conn(cid: int, phases: int, wiring: str, max_a: int, switch: bool = False) -> dict:
    return {"id": cid, "phases": phases, "wiring": wiring, "min_current_a": 6,
            "max_current_a": max_a, "can_switch_phases": switch}


STATIONS = [
    # (charging group, station id, OCPP version, connectors)
    ("fleet", "CP001", "1.6", [_conn(1, 3, "L1L2L3", 16)]),
    ("fleet", "CP002", "2.0.1", [_conn(1, 3, "L2L3L1", 16)]),
    ("visitors", "CP003", "1.6", [_conn(1, 3, "L3L1L2", 16, switch=True)]),
    ("visitors", "CP004", "2.0.1", [_conn(1, 1, "L2", 32)]),
    ("visitors", "CP005", "1.6", [_conn(1, 1, "L3", 32)]),
    ("public", "CP006", "2.0.1", [_conn(1, 3, "L1L2L3", 32)]),
]


def site_config(meter_port: int, broker_port: int, store_path: str, ocpp_port: int = 0) -> dict:
    groups: dict[str, dict] = {}
    for group, sid, _, connectors in STATIONS:
        g = groups.setdefault(group, {"id": group, "name": group.capitalize(), "stations": []})
        g["stations"].append({"id": sid, "connectors": connectors})
    groups["fleet"]["max_current_a"] = 32
    return {
        "site": {"site_id": SITE_ID, "timezone": "CET-1CEST,M3.5.0,M10.5.0/3",
                 "grid": {"max_current_a": 40, "safety_margin_a": 1},
                 "offline_unknown_tokens": "deny",
                 "charging_groups": list(groups.values())},
        "load_management": {"meter_max_age_s": 5, "failsafe_non_ev_a": 20, "raise_holdoff_s": 3,
                            "ramp_step_a": 6, "phase_hold_s": 20, "rotate_after_s": 60},
        "meters": [{"id": "grid", "model": "eastron_sdm630", "transport": "tcp",
                    "host": "127.0.0.1", "port": meter_port, "interval_s": 1.0, "stale_after_s": 5.0}],
        "ocpp": {"host": "127.0.0.1", "port": ocpp_port,
                 "stations": {sid: {"password": PASSWORD} for _, sid, _, _ in STATIONS}},
        "cloud": {"host": "127.0.0.1", "port": broker_port, "drain_poll_s": 0.5},
        "store": {"path": store_path},
        "control": {"grid_meter": "grid", "interval_s": 1, "telemetry_every_s": 5},
    }


def tariff(energy_m_per_kwh: int, parking: dict | None = None, base_m: int = 0) -> dict:
    return {"currency": "EUR", "energy_m_per_kwh": energy_m_per_kwh, "parking": parking,
            "monthly_base_m": base_m}


def cloud_snapshot(version: int = 1) -> dict:
    everywhere = {"site": True, "charging_groups": [], "stations": [], "connectors": []}
    return {
        "version": version,
        "groups": [
            {"id": "g-fleet", "name": "Fleet cars", "kind": "drivers", "billing": "record_only",
             "tariff": tariff(0), "active_on": everywhere, "prioritised": True, "state": "active"},
            {"id": "g-staff", "name": "Staff", "kind": "drivers", "billing": "automatic",
             "tariff": tariff(290, {"m_per_period": 1000, "period_s": 3600, "free_s": 14400, "cap_m": 8000}, 5000),
             "active_on": {"site": False, "charging_groups": ["fleet", "visitors"], "stations": [], "connectors": []},
             "prioritised": False, "state": "active"},
            {"id": "g-guests", "name": "Guest cards", "kind": "cards", "billing": "record_only",
             "tariff": None, "active_on": {"site": False, "charging_groups": ["visitors"], "stations": [],
                                            "connectors": []},
             "prioritised": False, "state": "active"},
            {"id": "g-adhoc", "name": "Pay as you go", "kind": "adhoc", "billing": "automatic",
             "tariff": tariff(490), "active_on": {"site": False, "charging_groups": ["public"], "stations": [],
                                                   "connectors": []},
             "prioritised": False, "state": "active"},
            {"id": "g-roam", "name": "eRoaming", "kind": "eroaming", "billing": "automatic",
             "tariff": tariff(390), "active_on": {"site": False, "charging_groups": ["public"], "stations": [],
                                                   "connectors": []},
             "prioritised": False, "state": "active",
             "windows": [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "24:00"}]},
        ],
        "drivers": [{"id": "d-1", "name": "Pool car 1", "group": "g-fleet"},
                    {"id": "d-2", "name": "Pool car 2", "group": "g-fleet"},
                    {"id": "d-3", "name": "A. Staff", "group": "g-staff"},
                    {"id": "d-4", "name": "B. Staff", "group": "g-staff"}],
        "tokens": [
            {"uid": "FLEET01", "groups": ["g-fleet"], "status": "valid", "expires_s": None, "driver": "d-1", "provider": None},
            {"uid": "FLEET02", "groups": ["g-fleet"], "status": "valid", "expires_s": None, "driver": "d-2", "provider": None},
            {"uid": "STAFF01", "groups": ["g-staff"], "status": "valid", "expires_s": None, "driver": "d-3", "provider": None},
            {"uid": "STAFF02", "groups": ["g-staff"], "status": "valid", "expires_s": None, "driver": "d-4", "provider": None},
            {"uid": "CARD01", "groups": ["g-guests"], "status": "valid", "expires_s": None, "driver": None, "provider": None},
            {"uid": "CARD99", "groups": ["g-guests"], "status": "blocked", "expires_s": None, "driver": None, "provider": None},
        ],
    }
