"""Why a meter read failed. The poller logs these once per incident."""

from __future__ import annotations

from typing import Any


class MeterError(Exception):
    """A meter could not be read. ``kind`` is a short stable code for grouping."""

    kind = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class MeterConnectError(MeterError):
    """The device (or gateway) cannot be reached."""

    kind = "connect"


class MeterTimeout(MeterError):
    """The device did not answer in time."""

    kind = "timeout"


class MeterExceptionResponse(MeterError):
    """The device answered with a Modbus exception (illegal address, busy, ...)."""

    kind = "exception"

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


class MeterProtocolError(MeterError):
    """The answer does not fit the request (short read, wrong length, garbage)."""

    kind = "protocol"


class MeterDataError(MeterError):
    """The registers were read but a value is impossible (NaN, out of range)."""

    kind = "data"

    def __init__(self, field: str, value: Any, message: str):
        super().__init__("%s: %s (got %r)" % (field, message, value))
        self.field = field
        self.value = value
