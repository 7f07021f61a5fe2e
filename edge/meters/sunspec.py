"""Find a SunSpec meter model on a device.

SunSpec devices start their map with the marker "SunS" (0x5375 0x6E53) at one
of a few well-known addresses, followed by a chain of models, each headed by
its ID and its length L (registers after the header). The chain ends with ID
0xFFFF. The meter model's data is addressed from its ID register.
"""

from __future__ import annotations

from edge.meters.errors import MeterError, MeterProtocolError
from edge.meters.model import MeterModel

SUNS_MARKER = [0x5375, 0x6E53]
END_OF_CHAIN = 0xFFFF
MAX_MODELS = 64  # a hostile chain must not make us walk forever


async def find_model_block(link, device_id: int, model: MeterModel) -> int:
    """Absolute address of the meter model's ID register; raises MeterError."""
    spec = model.sunspec
    fc = model.function_code
    tried = []
    for base in spec["base_addresses"]:
        try:
            marker = await link.read(fc, base, 2, device_id)
        except MeterError as exc:
            if exc.kind in ("connect", "timeout"):
                raise
            tried.append(base)
            continue
        if marker != SUNS_MARKER:
            tried.append(base)
            continue
        address = base + 2
        seen = []
        for _ in range(MAX_MODELS):
            if address + 2 > 65536:
                break
            model_id, length = await link.read(fc, address, 2, device_id)
            if model_id == END_OF_CHAIN:
                break
            if model_id in spec["model_ids"]:
                if length != spec["model_length"]:
                    raise MeterProtocolError(
                        "SunSpec model %d at %d has length %d, expected %d"
                        % (model_id, address, length, spec["model_length"]))
                return address
            seen.append(model_id)
            address += 2 + length
        raise MeterProtocolError("SunSpec map at %d has no meter model %s (models found: %s)"
                                 % (base, sorted(spec["model_ids"]), seen or "none"))
    raise MeterProtocolError("no SunSpec marker 'SunS' at addresses %s" % tried)
