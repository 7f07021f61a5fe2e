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
