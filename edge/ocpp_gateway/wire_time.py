"""OCPP timestamps (ISO 8601, UTC on the wire) <-> integer epoch seconds of the core."""
from __future__ import annotations

from datetime import datetime, timezone

from ocpp.exceptions import PropertyConstraintViolationError


def to_epoch_s(text: str, field: str = "timestamp") -> int:
    """Parse an OCPP timestamp; a timestamp without offset is taken as UTC.

    A value the schema let through (any string) but that is no date raises the
    library's PropertyConstraintViolationError naming the field, so the wallbox gets
    a precise CallError instead of an InternalError.
    """
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise PropertyConstraintViolationError(
            description="%s: not an ISO 8601 date-time (got %r)" % (field, text[:40]),
            details={"field": field}) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def to_wire(epoch_s: float) -> str:
    return datetime.fromtimestamp(int(epoch_s), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
