"""Modbus meters: models as data files, decoder, pymodbus adapter, poller.

Public API (see docs/meters.md):
    load_model(name) -> MeterModel, available_models()
    MeterConfig.from_dict(d, field), parse_meters(list) -> [MeterConfig]
    MeterPoller(configs, clock=..., link_factory=...): start(), stop(),
        poll_once(id), latest(id), is_stale(id), status(id), subscribe(cb)
    MeterReading (current_da, voltage_dv, phase_power_w per phase; power_w,
        import_wh, export_wh, at_s)
"""

from edge.meters.config import MeterConfig, parse_meters
from edge.meters.errors import MeterError
from edge.meters.model import MeterModel, available_models, load_model
from edge.meters.poller import MeterPoller
from edge.meters.reading import MeterReading

__all__ = [
    "MeterConfig", "MeterError", "MeterModel", "MeterPoller", "MeterReading",
    "available_models", "load_model", "parse_meters",
]
