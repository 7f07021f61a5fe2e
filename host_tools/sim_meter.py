"""A simulated meter: a real pymodbus server serving any model's registers.

The registers are built from physical values (volts, amps, watts, Wh) with the
model's own data file, so the simulator speaks exactly what the datasheet
says: float32 for Eastron, LSW-first INT32 for Carlo Gavazzi, SunSpec with
its "SunS" marker, model chain and scale factors.

Library use (tests, ``make run``)::

    sim = SimMeter("eastron_sdm630", values={"current_a": [10, 12, 8]})
    port = await sim.start()            # Modbus TCP on 127.0.0.1, free port
    sim.set_values(current_a=[20, 0, 0])  # change the load at run time
    sim.values_provider = lambda: {...}   # or compute it on every request
    sim.set_fault("silent")             # hostile behaviour for tests
    await sim.stop()

Command line::

    python -m host_tools.sim_meter --model eastron_sdm630 --port 5020 \
        --current 10,12,8 --vary
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import struct
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Mapping, Optional

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge.meters import codec
from edge.meters.model import MeterModel, load_model

log = logging.getLogger(__name__)

# Physical inputs (units in the names) -> the model's readings and their unit step.
_INPUTS = {
    "voltage_v": ("voltage_dv", 1),
    "current_a": ("current_da", 1),
    "phase_power_w": ("phase_power_w", 0),
    "power_w": ("power_w", 0),
    "import_wh": ("import_wh", 0),
    "export_wh": ("export_wh", 0),
}
DEFAULT_VALUES = {
    "voltage_v": [230.0, 230.0, 230.0], "current_a": [0.0, 0.0, 0.0],
    "phase_power_w": [0.0, 0.0, 0.0], "power_w": 0.0, "import_wh": 0, "export_wh": 0,
}
DEFAULT_SUNSPEC_SF = {"A_SF": -2, "V_SF": -1, "W_SF": 0, "TotWh_SF": 0}
SUNSPEC_COMMON_LENGTH = 65
FAULTS = (None, "exception", "silent", "short", "garbage", "bad_length", "slow", "late")


class SimMeter:
    """One simulated meter (one device id) on its own server."""

    def __init__(self, model: str | MeterModel, *, values: Optional[Mapping] = None,
                 device_id: int = 1, host: str = "127.0.0.1", port: int = 0,
                 framer: str = "socket", serial_port: Optional[str] = None,
                 sunspec_model_id: int = 203, sunspec_base: int = 40000,
                 scale_factors: Optional[Mapping[str, int]] = None,
                 values_provider: Optional[Callable[[], Mapping]] = None):
        self.model = load_model(model) if isinstance(model, str) else model
        self.device_id = device_id
        self.host = host
        self.port = port
        self.framer = FramerType.RTU if framer == "rtu" else FramerType.SOCKET
        self.serial_port = serial_port
        self.values_provider = values_provider
        self.requests = 0
        self.fault: Optional[str] = None
        self.exception_code = ExcCodes.DEVICE_FAILURE
        self.delay_s = 5.0
        self._server = None
        self._held: Optional[tuple] = None
        self.fault_address: Optional[int] = None
        self._image: dict[int, int] = {}
        self._dirty = True
        self._values = dict(DEFAULT_VALUES)
        self.origin = 0
        if self.model.sunspec:
            self._sf = dict(DEFAULT_SUNSPEC_SF)
            self._sf.update(scale_factors or {})
            self.origin = self._build_sunspec_frame(sunspec_base, sunspec_model_id)
        else:
            self._sf = {}
            for address, count in self.model.read_blocks(0):
                for a in range(address, address + count):
                    self._image[a] = 0
        self.set_values(values or {})

    # -- register image ------------------------------------------------------

    def _build_sunspec_frame(self, base: int, model_id: int) -> int:
        words = [0x5375, 0x6E53, 1, SUNSPEC_COMMON_LENGTH]
        common = [0] * SUNSPEC_COMMON_LENGTH
        maker = b"edge-sim".ljust(32, b"\0")  # Mn, the first point of the common model
        common[:16] = [(maker[2 * i] << 8) | maker[2 * i + 1] for i in range(16)]
        words += common
        origin = base + len(words)
        length = self.model.sunspec["model_length"]
        words += [model_id, length] + [0] * length + [0xFFFF, 0]
        for i, w in enumerate(words):
            self._image[base + i] = w
        for name, offset in self.model.scale_factors.items():
            self._image[origin + offset] = self._sf[name] & 0xFFFF
        return origin

    def set_values(self, values: Optional[Mapping] = None, **kw) -> None:
        """Set physical values; keys of ``DEFAULT_VALUES``. None = "not available"."""
        merged = dict(values or {}, **kw)
        for key in merged:
            if key not in _INPUTS:
                raise KeyError("unknown simulated value %r (known: %s)" % (key, ", ".join(_INPUTS)))
        self._values.update(merged)
        for key, (field, step) in _INPUTS.items():
            value = self._values[key]
            if field in ("voltage_dv", "current_da", "phase_power_w"):
                for phase, spec in enumerate(self.model.phases[field]):
                    if spec:
                        self._write_spec(spec, None if value is None else value[phase], step)
            elif self.model.totals[field]:
                self._write_spec(self.model.totals[field], value, step)
        self._dirty = True

    def _write_spec(self, spec, value, step: int) -> None:
        for i, part in enumerate(spec):
            if value is None:
                if not part.na:
                    raise ValueError("model %s has no 'not available' value for %s"
                                     % (self.model.name, part.type))
                words = self._na_words(part)
            else:
                words = self._encode(part, value if i == 0 else 0, step)
            for j, w in enumerate(words):
                self._image[self.origin + part.address + j] = w

    def _na_words(self, part) -> list[int]:
        bits = min(part.na)
        words = [(bits >> (16 * k)) & 0xFFFF for k in reversed(range(part.count))]
        return words if self.model.word_order == "big" else words[::-1]

    def _encode(self, part, value, step: int) -> list[int]:
        exponent = part.exponent + (self._sf[part.sf] if part.sf else 0)
        raw = Decimal(str(value)).scaleb(step - exponent)
        number = float(raw) if codec.is_float_type(part.type) else int(
            raw.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        try:
            return codec.encode(number, part.type, self.model.word_order)
        except (struct.error, OverflowError):
            raise ValueError("%s cannot hold %r in its %s register at %d"
                             % (self.model.name, value, part.type, part.address)) from None

    def set_registers(self, address: int, words: list[int]) -> None:
        """Serve these raw words at this absolute address (datasheet tests)."""
        for i, w in enumerate(words):
            if address + i not in self._image:
                raise KeyError("address %d is not served by this model" % (address + i))
            self._image[address + i] = w & 0xFFFF
        self._dirty = True

    def registers(self, address: int, count: int) -> list[int]:
        return [self._image[address + i] for i in range(count)]

    def set_fault(self, kind: Optional[str], *, exception_code: int = 4, delay_s: float = 5.0,
                  address: Optional[int] = None) -> None:
        """None (healthy), "exception", "silent", "short", "garbage", "bad_length", "slow"
        or "late".

        "exception" answers every request with ``exception_code``, or only those
        starting at ``address`` when it is given.
        "late" holds the answer to the request at ``address`` until another request
        of the same length arrives, then sends it just before that one's answer:
        the classic late RTU reply that fits the next request.
        """
        if kind not in FAULTS:
            raise ValueError("fault must be one of %s" % (FAULTS,))
        if kind == "late" and address is None:
            raise ValueError("the 'late' fault needs the address of the request to hold")
        self.fault = kind
        self.exception_code = ExcCodes(exception_code)
        self.delay_s = delay_s
        self.fault_address = address

    # -- server hooks --------------------------------------------------------

    async def _action(self, function_code, start_address, address, count, registers, set_values):
        self.requests += 1
        if self.fault == "exception" and (self.fault_address is None or address == self.fault_address):
            return self.exception_code
        if self.fault == "slow":
            await asyncio.sleep(self.delay_s)
        held = self._held
        if held is not None and held[1] == count and held[2] != address:
            self._held = None
            held[0].set()
            await asyncio.sleep(0.05)  # the held answer goes out first
        elif self.fault == "late" and held is None and address == self.fault_address:
            release = asyncio.Event()
            self._held = (release, count, address)
            await release.wait()
        if self.values_provider is not None:
            self.set_values(self.values_provider())
        if self._dirty:
            for a, w in self._image.items():
                registers[a - start_address] = w
            self._dirty = False
        return None

    def _trace_pdu(self, sending: bool, pdu):
        if sending and self.fault == "short" and isinstance(pdu, ReadHoldingRegistersResponse):
            pdu.registers = pdu.registers[:-1]
        return pdu

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        if self.fault == "silent":
            return b""
        if self.fault == "bad_length" and data:
            # A register answer whose byte count claims more data than the frame holds.
            at = 8 if self.framer == FramerType.SOCKET else 2
            return data[:at] + bytes([min(255, data[at] + 10)]) + data[at + 1:]
        if self.fault == "garbage" and data:
            # Keep the frame header, replace the function code with one no client knows.
            at = 7 if self.framer == FramerType.SOCKET else 1
            return data[:at] + b"\x63" + bytes((b ^ 0x5A) for b in data[at + 1:])
        return data

    def _device(self) -> SimDevice:
        runs: list[tuple[int, list[int]]] = []
        for a in sorted(self._image):
            if runs and runs[-1][0] + len(runs[-1][1]) == a:
                runs[-1][1].append(self._image[a])
            else:
                runs.append((a, [self._image[a]]))
        blocks = [SimData(address=a, values=words, datatype=DataType.REGISTERS) for a, words in runs]
        self._dirty = True
        return SimDevice(id=self.device_id, simdata=blocks, action=self._action)

    async def start(self) -> int:
        """Start serving; returns the TCP port (0 for a serial port)."""
        kwargs = dict(framer=self.framer, trace_packet=self._trace_packet, trace_pdu=self._trace_pdu)
        if self.serial_port:
            self._server = ModbusSerialServer(self._device(), port=self.serial_port, **kwargs)
        else:
            self._server = ModbusTcpServer(self._device(), address=(self.host, self.port), **kwargs)
        await self._server.serve_forever(background=True)
        if not self.serial_port:
            self.port = self._server.transport.sockets[0].getsockname()[1]
        log.info("simulated %s (device %d) on %s", self.model.name, self.device_id,
                 self.serial_port or "%s:%d" % (self.host, self.port))
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None


class SimBus:
    """Several simulated meters behind one server: an RS-485 bus behind a gateway.

    Each meter keeps its own device id, values and device-level faults
    ("exception", "slow"); line-level faults are set on the bus's first meter.
    """

    def __init__(self, meters: list[SimMeter], *, host: str = "127.0.0.1", port: int = 0,
                 framer: str = "rtu"):
        ids = [m.device_id for m in meters]
        if len(set(ids)) != len(ids):
            raise ValueError("device ids on one bus must differ, got %s" % ids)
        self.meters = meters
        self.host = host
        self.port = port
        self.framer = FramerType.RTU if framer == "rtu" else FramerType.SOCKET
        self._server = None

    async def start(self) -> int:
        line = self.meters[0]
        line.framer = self.framer
        self._server = ModbusTcpServer([m._device() for m in self.meters], framer=self.framer,
                                       address=(self.host, self.port),
                                       trace_packet=line._trace_packet, trace_pdu=line._trace_pdu)
        await self._server.serve_forever(background=True)
        self.port = self._server.transport.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None


def varying_load(base_a: list[float], voltage_v: float = 230.0, period_s: float = 60.0,
                 clock: Callable[[], float] = time.time) -> Callable[[], dict]:
    """A values provider whose phase currents swing +-50 % over ``period_s``."""
    start = clock()
    energy = {"wh": 0.0, "at": start}

    def values() -> dict:
        now = clock()
        factor = 1.0 + 0.5 * math.sin(2 * math.pi * (now - start) / period_s)
        currents = [round(a * factor, 2) for a in base_a]
        powers = [round(voltage_v * a, 1) for a in currents]
        energy["wh"] += sum(powers) * (now - energy["at"]) / 3600.0
        energy["at"] = now
        return {"voltage_v": [voltage_v] * 3, "current_a": currents, "phase_power_w": powers,
                "power_w": round(sum(powers), 1), "import_wh": round(energy["wh"]), "export_wh": 0}
    return values


def _floats(text: str) -> list[float]:
    parts = [float(p) for p in text.split(",")]
    return parts * 3 if len(parts) == 1 else parts


async def _main(args) -> None:
    currents = _floats(args.current)
    values = {"voltage_v": [args.voltage] * 3, "current_a": currents,
              "phase_power_w": [round(args.voltage * a, 1) for a in currents],
              "power_w": round(sum(args.voltage * a for a in currents), 1),
              "import_wh": args.import_wh, "export_wh": args.export_wh}
    sim = SimMeter(args.model, values=values, device_id=args.device_id, host=args.host,
                   port=args.port, framer=args.framer)
    if args.vary:
        sim.values_provider = varying_load(currents, args.voltage)
    port = await sim.start()
    print("simulated %s on %s:%d (device %d, %s framing)" % (args.model, args.host, port,
                                                             args.device_id, args.framer), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Simulated Modbus meter")
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020)
    parser.add_argument("--framer", choices=("socket", "rtu"), default="socket",
                        help="socket = Modbus TCP, rtu = RTU over TCP (gateway)")
    parser.add_argument("--device-id", type=int, default=1)
    parser.add_argument("--voltage", type=float, default=230.0)
    parser.add_argument("--current", default="0", help="amps, one value or L1,L2,L3")
    parser.add_argument("--import-wh", type=int, default=0)
    parser.add_argument("--export-wh", type=int, default=0)
    parser.add_argument("--vary", action="store_true", help="let the load swing over a minute")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
