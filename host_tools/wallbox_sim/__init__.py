"""Wallbox simulator: OCPP 1.6 / 2.0.1 charge points on the `ocpp` library.

Public API (also re-exported by `host_tools.sim_wallbox`):
`Fleet`, `StationSpec`, `ConnectorSpec`, `EV`, `Traffic`, `SimClock`, `ManualClock`.
"""
from .clock import ManualClock, SimClock, iso, parse_iso
from .fleet import Fleet, Traffic
from .model import EV, ConnectorSpec, StationSpec

__all__ = ["Fleet", "Traffic", "StationSpec", "ConnectorSpec", "EV", "SimClock",
           "ManualClock", "iso", "parse_iso"]
