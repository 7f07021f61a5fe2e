"""The reading a meter poll produces: integers with their units in the names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

Phases = tuple[Optional[int], Optional[int], Optional[int]]


@dataclass(frozen=True)
class MeterReading:
    """One successful read of one meter.

    Per site phase L1, L2, L3: ``current_da`` (deciamperes, the magnitude a
    breaker carries, never negative), ``voltage_dv``
    (decivolts, line to neutral), ``phase_power_w`` (watts). Totals:
    ``power_w`` (watts; negative while exporting), ``import_wh`` and
    ``export_wh`` (watt-hours). ``at_s`` is when the read completed (UTC
    seconds from the injected clock); the meter's own data is about a second
    older than that. A phase the meter does not measure (a single-phase
    SunSpec 201 meter) is None, as is a value the meter reports as "not
    available".
    """

    meter_id: str
    model: str
    at_s: float
    current_da: Phases
    voltage_dv: Phases
    phase_power_w: Phases
    power_w: Optional[int]
    import_wh: Optional[int]
    export_wh: Optional[int]

    def as_dict(self) -> dict:
        return {
            "meter_id": self.meter_id, "model": self.model, "at_s": self.at_s,
            "current_da": list(self.current_da), "voltage_dv": list(self.voltage_dv),
            "phase_power_w": list(self.phase_power_w), "power_w": self.power_w,
            "import_wh": self.import_wh, "export_wh": self.export_wh,
        }
