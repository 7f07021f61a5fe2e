"""What the 1.6 and 2.0.1 simulated charge points share, over the ocpp library's ChargePoint."""
from __future__ import annotations

import itertools

from .station import Station


class SimPoint:
    """Mixin placed before the version's ``ChargePoint`` in the bases."""

    def __init__(self, station: Station, connection, response_timeout: float = 30,
                 validate: bool = True) -> None:
        super().__init__(station.id, connection, response_timeout=response_timeout)
        self.station = station
        self.validate = validate
        # Message ids only need to be unique per connection; a counter spares the
        # os.urandom call of uuid4 on every message (noticeable with 500 stations).
        self._unique_id_generator = itertools.count(1).__next__
        if not validate:
            for handlers in self.route_map.values():
                handlers["_skip_schema_validation"] = True

    async def _call(self, payload):
        """A call that raises on a CallError; schema checks unless the fleet is lean."""
        return await self.call(payload, suppress=False, skip_schema_validation=not self.validate)
