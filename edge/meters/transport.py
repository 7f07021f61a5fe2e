"""pymodbus client adapter: Modbus TCP, RTU over a serial line, RTU over TCP.

One ``ModbusLink`` is one connection (a TCP socket or a serial port). Meters
on the same RS-485 bus or behind the same gateway share a link and tell
themselves apart by device id; pymodbus serialises their requests.

Every failure becomes a ``MeterError`` subclass with a message that names the
endpoint, the request and what went wrong. pymodbus is built with retries=0
and no automatic reconnect: the poller decides when to retry and reconnect,
so the time a broken meter can take is bounded by our own settings.
"""

from __future__ import annotations

import asyncio
import logging

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from edge.meters.errors import (
    MeterConnectError,
    MeterExceptionResponse,
    MeterProtocolError,
    MeterTimeout,
)

log = logging.getLogger(__name__)

TRANSPORTS = ("tcp", "rtu", "rtu_over_tcp")

EXCEPTION_NAMES = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value",
    4: "server device failure", 5: "acknowledge", 6: "server device busy",
    8: "memory parity error", 10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


def quiet_pymodbus_logging() -> None:
    """pymodbus logs an ERROR for every unanswered request; we log per incident."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


class ModbusLink:
    """A Modbus connection to one TCP endpoint or one serial port."""

    def __init__(self, transport: str, *, host: str | None = None, port: int = 502,
                 serial_port: str | None = None, baudrate: int = 9600, parity: str = "N",
                 stopbits: int = 1, bytesize: int = 8, timeout_s: float = 1.0):
        if transport not in TRANSPORTS:
            raise ValueError("transport must be one of %s, got %r" % (TRANSPORTS, transport))
        self.transport = transport
        self.host = host
        self.port = port
        self.serial_port = serial_port
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self.bytesize = bytesize
        self.timeout_s = timeout_s
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._connect_lock = asyncio.Lock()
        # One request at a time per link: the frame screening below keeps the
        # expected function code of *the* outstanding request (a bus has one).
        self._request_lock = asyncio.Lock()
        self._expected_fc = 0
        self._garbage: str | None = None

    @property
    def endpoint(self) -> str:
        if self.transport == "rtu":
            return "serial %s" % self.serial_port
        return "%s://%s:%d" % (self.transport, self.host, self.port)

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self.transport == "rtu":
            return AsyncModbusSerialClient(
                self.serial_port, framer=FramerType.RTU, baudrate=self.baudrate,
                bytesize=self.bytesize, parity=self.parity, stopbits=self.stopbits,
                timeout=self.timeout_s, retries=0, reconnect_delay=0,
                trace_packet=self._screen_packet)
        framer = FramerType.SOCKET if self.transport == "tcp" else FramerType.RTU
        return AsyncModbusTcpClient(self.host, port=self.port, framer=framer,
                                    timeout=self.timeout_s, retries=0, reconnect_delay=0,
                                    trace_packet=self._screen_packet)

    def _screen_packet(self, sending: bool, data: bytes) -> bytes:
        # pymodbus raises inside asyncio's data_received on a function code it
        # cannot decode, which asyncio logs as a fatal error on every poll. We
        # drop such a frame ourselves, note why, and drop the connection so the
        # next request starts from a clean stream.
        if sending:
            return data
        at = 7 if self.transport == "tcp" else 1
        if len(data) > at and data[at] not in (self._expected_fc, self._expected_fc | 0x80):
            return self._drop("function code 0x%02x in answer to fc%d (%d bytes)" % (
                data[at], self._expected_fc, len(data)))
        if self.transport == "tcp" and len(data) > 8 and data[7] == self._expected_fc:
            # MBAP length = unit id + function code + byte count + data
            mbap_length = int.from_bytes(data[4:6], "big")
            if data[8] + 3 != mbap_length:
                return self._drop("byte count %d in a frame of length %d" % (data[8], mbap_length))
        return data

    def _drop(self, why: str) -> bytes:
        self._garbage = why
        client = self._client
        if client is not None:
            asyncio.get_running_loop().call_soon(client.close)
        return b""

    async def _connected_client(self):
        async with self._connect_lock:
            if self._client is not None and self._client.connected:
                return self._client
            self.close()
            client = self._new_client()
            try:
                ok = await asyncio.wait_for(client.connect(), self.timeout_s + 1.0)
            except (asyncio.TimeoutError, OSError) as exc:
                ok = False
                reason = str(exc) or type(exc).__name__
            else:
                reason = ("cannot open the port: missing, busy or no permission"
                          if self.transport == "rtu" else "connection refused or unreachable")
            if not ok:
                client.close()
                raise MeterConnectError("%s: cannot connect (%s)" % (self.endpoint, reason))
            self._client = client
            return client

    async def read(self, function_code: int, address: int, count: int, device_id: int) -> list[int]:
        """Read ``count`` registers; returns exactly ``count`` 16-bit words."""
        async with self._request_lock:
            return await self._read(function_code, address, count, device_id)

    async def _read(self, function_code: int, address: int, count: int, device_id: int) -> list[int]:
        what = "%s device %d fc%d @%d x%d" % (self.endpoint, device_id, function_code, address, count)
        client = await self._connected_client()
        call = client.read_input_registers if function_code == 4 else client.read_holding_registers
        self._expected_fc = function_code
        self._garbage = None
        try:
            # pymodbus has its own timeout; ours is the backstop if it misses one.
            response = await asyncio.wait_for(
                call(address, count=count, device_id=device_id), self.timeout_s + 0.5)
        except (asyncio.TimeoutError, ModbusIOException, ConnectionException) as exc:
            raise self._failure(what, exc) from None
        except ModbusException as exc:
            self.close()
            raise MeterProtocolError("%s: %s" % (what, exc)) from None
        if response.isError():
            code = getattr(response, "exception_code", None)
            name = EXCEPTION_NAMES.get(code, "unknown code")
            raise MeterExceptionResponse("%s: exception %s (%s)" % (what, code, name), code or 0)
        registers = list(getattr(response, "registers", None) or [])
        if len(registers) != count:
            raise MeterProtocolError("%s: asked for %d registers, got %d" % (what, count, len(registers)))
        return registers

    def _failure(self, what: str, exc: Exception) -> Exception:
        if self._garbage:
            self.close()
            return MeterProtocolError("%s: unusable answer (%s)" % (what, self._garbage))
        lost = self._client is None or not self._client.connected
        if isinstance(exc, ConnectionException) or lost:
            self.close()
            return MeterConnectError("%s: connection lost" % what)
        if isinstance(exc, asyncio.TimeoutError) or "No response" in str(exc):
            if self.transport != "tcp":
                # RTU frames carry no transaction id: a late answer could be taken
                # for the next request's (same device, same length). Reopening the
                # line or gateway connection discards whatever is still under way.
                self.close()
            return MeterTimeout("%s: no answer within %.2f s" % (what, self.timeout_s))
        self.close()
        return MeterProtocolError("%s: unusable answer (%s)" % (what, exc))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
