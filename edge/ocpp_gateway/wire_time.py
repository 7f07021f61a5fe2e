"""OCPP timestamps (ISO 8601, UTC on the wire) <-> integer epoch seconds of the core."""
from __future__ import annotations

from datetime import datetime, timezone


def to_epoch_s(text: str) -> int:
    """Parse an OCPP timestamp; a timestamp without offset is taken as UTC (as OCPP says).

    Raises ValueError naming the value for anything else.
    """
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError("timestamp is not ISO 8601: %r" % (text,)) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def to_wire(epoch_s: float) -> str:
    return datetime.fromtimestamp(int(epoch_s), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
