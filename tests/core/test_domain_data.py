"""Shared sample data for the domain core tests (no tests here; plain data, no pytest fixtures)."""


def site_dict():
    return {
        "site_id": "demo",
        "timezone": "CET-1CEST,M3.5.0,M10.5.0/3",
        "grid": {"max_current_a": 63, "max_power_w": None, "safety_margin_a": 1},
        "offline_unknown_tokens": "deny",
        "charging_groups": [
            {"id": "garage", "name": "Garage", "max_current_a": 50,
             "stations": [
                 {"id": "CP001", "max_current_a": 32,
                  "connectors": [
                      {"id": 1, "phases": 3, "wiring": "L1L2L3", "min_current_a": 6,
                       "max_current_a": 16, "can_switch_phases": False},
                      {"id": 2, "phases": 1, "wiring": "L2", "min_current_a": 6,
                       "max_current_a": 16},
                  ]},
                 {"id": "CP002",
                  "connectors": [
                      {"id": 1, "phases": 3, "wiring": "L2L3L1", "max_current_a": 32,
                       "can_switch_phases": True},
                  ]},
             ]},
            {"id": "visitors", "name": "Visitors",
             "stations": [
                 {"id": "CP101", "max_current_a": 22,
                  "connectors": [{"id": 1, "phases": 3, "max_current_a": 22}]},
             ]},
        ],
    }


def build_site(d=None):
    from edge.core.topology import Site
    return Site.from_dict(site_dict() if d is None else d)


STAFF_TARIFF = {"currency": "EUR", "energy_m_per_kwh": 350,
                "parking": {"m_per_period": 500, "period_s": 3600, "free_s": 7200, "cap_m": 5000},
                "monthly_base_m": 0}


def snapshot_dict():
    """Four groups, one of each kind, on the sample site."""
    return {
        "version": 12,
        "groups": [
            {"id": "g-staff", "name": "Staff", "kind": "drivers", "billing": "automatic",
             "tariff": dict(STAFF_TARIFF, parking=dict(STAFF_TARIFF["parking"])),
             "active_on": {"site": False, "charging_groups": ["garage"], "stations": [],
                           "connectors": [["CP101", 1]]},
             "prioritised": True, "state": "active", "windows": []},
            {"id": "g-guests", "name": "Guests", "kind": "cards", "billing": "record_only",
             "tariff": None,
             "active_on": {"site": False, "charging_groups": [], "stations": ["CP101"], "connectors": []},
             "prioritised": False, "state": "active", "windows": []},
            {"id": "g-adhoc", "name": "Pay as you go", "kind": "adhoc", "billing": "automatic",
             "tariff": {"currency": "EUR", "energy_m_per_kwh": 490, "parking": None, "monthly_base_m": 0},
             "active_on": {"site": False, "charging_groups": ["visitors"], "stations": [],
                           "connectors": [["CP002", 1]]},
             "prioritised": False, "state": "active", "windows": []},
            {"id": "g-roam", "name": "Public", "kind": "eroaming", "billing": "automatic",
             "tariff": {"currency": "EUR", "energy_m_per_kwh": 300, "parking": None, "monthly_base_m": 0},
             "active_on": {"site": False, "charging_groups": ["visitors"], "stations": [], "connectors": []},
             "prioritised": False, "state": "active",
             "windows": [{"days": [0, 1, 2, 3, 4], "start": "07:00", "end": "19:00"},
                         {"days": [5], "start": "09:00", "end": "13:00"}]},
        ],
        "drivers": [{"id": "d-17", "name": "Jane Doe", "group": "g-staff"}],
        "tokens": [
            {"uid": "04A1B2C3D4", "groups": ["g-staff"], "status": "valid", "expires_s": None,
             "driver": "d-17", "provider": None},
            {"uid": "CARD0001", "groups": ["g-guests"], "status": "valid", "expires_s": None,
             "driver": None, "provider": None},
            {"uid": "BLOCKED01", "groups": ["g-guests"], "status": "blocked", "expires_s": None,
             "driver": None, "provider": None},
            {"uid": "OLD0001", "groups": ["g-guests"], "status": "valid", "expires_s": 1700000000,
             "driver": None, "provider": None},
            {"uid": "DE-ABC-C123", "groups": ["g-roam"], "status": "valid", "expires_s": None,
             "driver": None, "provider": "DE-ABC"},
            {"uid": "BOTH0001", "groups": ["g-guests", "g-staff"], "status": "valid", "expires_s": None,
             "driver": None, "provider": None},
        ],
    }


def build_book(snap=None, site=None):
    from edge.core.book import GroupBook
    return GroupBook.from_snapshot(snapshot_dict() if snap is None else snap,
                                   build_site() if site is None else site, "sync", 1000)


# Instants (UTC) in Europe/Berlin used by the tests.
MON_2025_06_02_0800_LOCAL = 1748844000   # Monday 08:00 CEST (06:00 UTC)
MON_2025_06_02_2000_LOCAL = 1748887200   # Monday 20:00 CEST
SUN_2025_06_01_1000_LOCAL = 1748764800   # Sunday 10:00 CEST
