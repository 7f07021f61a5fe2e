"""Find a SunSpec meter model on a device (the gateway's asyncio side).

The search itself is edge/node/sunspec.py's ``walk``, shared with the meter node:
SunSpec devices start their map with the marker "SunS" (0x5375 0x6E53) at one of a
few well-known addresses, followed by a chain of models, each headed by its ID and
its length, ended by ID 0xFFFF. The meter model's data is addressed from its ID
register.
"""

from __future__ import annotations

from edge.meters.errors import MeterError, MeterProtocolError
from edge.meters.model import MeterModel
from edge.node.sunspec import walk


async def find_model_block(link, device_id: int, model: MeterModel) -> int:
    """Absolute address of the meter model's ID register; raises MeterError."""
    spec = model.sunspec
    steps = walk(spec["base_addresses"], spec["model_ids"], spec["model_length"], MeterProtocolError)
    request = next(steps)
    while True:
        try:
            try:
                words = await link.read(model.function_code, request[0], request[1], device_id)
            except MeterError as exc:
                request = steps.throw(exc)
            else:
                request = steps.send(words)
        except StopIteration as done:
            return done.value
