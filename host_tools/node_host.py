"""Runs the meter node's program (edge/node/app.py) on CPython, unchanged.

What a board gives the program, this gives it on a PC: a serial port (a USB
RS-485 adapter through pyserial, or one end of a pseudo-terminal), MicroPython's
ticks, and micropython-lib's real ``umqtt.simple`` (fetched by
tools/fetch_umqtt.py) over a socket shim, since it was written for MicroPython's
``usocket`` (``write``/``read`` on the socket itself). No watchdog: a PC process
that hangs is the supervisor's business.

    python -m host_tools.node_host --config node_config.json --serial /dev/ttyUSB0
    python -m host_tools.node_host --config node_config.json --serial-fd 5   (tests)

The tests run it against a simulated meter on a pseudo-terminal and a real
Mosquitto (tests/meter_node).
"""
from __future__ import annotations

import argparse
import binascii
import fcntl
import json
import os
import socket
import struct
import sys
import termios
import time
import types
from pathlib import Path

from edge.core.errors import ValidationError
from edge.node import app
from edge.node.config import parse
from edge.node.rtu import RtuMaster

REPO = Path(__file__).resolve().parent.parent
MP_LIB = Path(os.environ.get("EDGE_MP_LIB", REPO / ".venv" / "mp-lib"))
SOCKET_TIMEOUT_S = 10.0     # a board has its watchdog; here a dead broker must not hang us


class HostClock:
    """MicroPython's ticks on CPython (no wrap-around needed in a test's lifetime)."""

    @staticmethod
    def ticks_ms() -> int:
        return time.monotonic_ns() // 1_000_000

    @staticmethod
    def ticks_add(t: int, ms: int) -> int:
        return t + ms

    @staticmethod
    def ticks_diff(a: int, b: int) -> int:
        return a - b

    @staticmethod
    def sleep_ms(ms: int) -> None:
        time.sleep(ms / 1000)


class FdUart:
    """machine.UART's read side and write side over a file descriptor (a pty end)."""

    def __init__(self, fd: int):
        self.fd = fd

    def any(self) -> int:
        buf = fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0")
        return struct.unpack("i", buf)[0]

    def read(self, n: int) -> bytes | None:
        return os.read(self.fd, n) or None

    def write(self, data: bytes) -> int:
        return os.write(self.fd, bytes(data))


class SerialUart:
    """machine.UART over pyserial (a USB RS-485 adapter: it switches direction itself)."""

    def __init__(self, port: str, baudrate: int, parity: str, stopbits: int):
        import serial
        self.ser = serial.Serial(port, baudrate=baudrate, parity=parity, stopbits=stopbits, timeout=0)

    def any(self) -> int:
        return self.ser.in_waiting

    def read(self, n: int) -> bytes | None:
        return self.ser.read(n) or None

    def write(self, data: bytes) -> int:
        return self.ser.write(bytes(data))

    def flush(self) -> None:
        self.ser.flush()


class _MicroSocket:
    """A CPython socket with MicroPython's stream methods, as umqtt.simple uses them."""

    def __init__(self, *args):
        self._s = socket.socket(*args)
        self._s.settimeout(SOCKET_TIMEOUT_S)

    def connect(self, addr) -> None:
        self._s.connect(addr)

    def write(self, data, length=None) -> int:
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data if length is None else data[:length])
        self._s.sendall(data)
        return len(data)

    def read(self, n: int):
        chunks = b""
        while len(chunks) < n:
            try:
                got = self._s.recv(n - len(chunks))
            except BlockingIOError:
                return chunks or None
            if not got:
                break
            chunks += got
        return chunks

    def setblocking(self, flag: bool) -> None:
        self._s.settimeout(SOCKET_TIMEOUT_S if flag else 0.0)

    def close(self) -> None:
        self._s.close()


def _usocket() -> types.ModuleType:
    mod = types.ModuleType("usocket")
    mod.socket = _MicroSocket
    mod.getaddrinfo = lambda host, port, *a: socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
    return mod


def umqtt_client_class():
    """micropython-lib's umqtt.simple.MQTTClient, running on CPython."""
    path = MP_LIB / "umqtt" / "simple.py"
    if not path.is_file():
        raise FileNotFoundError("%s is missing: run `make deps` (tools/fetch_umqtt.py fetches it)" % path)
    sys.modules.setdefault("usocket", _usocket())
    sys.modules.setdefault("ustruct", struct)
    sys.modules.setdefault("ubinascii", binascii)
    if str(MP_LIB) not in sys.path:
        sys.path.append(str(MP_LIB))
    from umqtt.simple import MQTTClient
    return MQTTClient


def mqtt_factory(client_id, server, port, user, password, keepalive):
    cls = umqtt_client_class()
    enc = lambda s: None if s is None else s.encode()  # noqa: E731  (lengths are byte counts)
    return cls(enc(client_id), server, port=port, user=enc(user), password=enc(password),
               keepalive=keepalive)


def build_node(cfg: dict, uart, out=print) -> app.Node:
    """The node for a node_config.json's contents (checked and completed as on a board)."""
    cfg = parse(cfg)
    u = cfg["uart"]
    master = RtuMaster(uart, HostClock, baudrate=u["baudrate"], timeout_ms=cfg["timeout_ms"])
    return app.Node(cfg, master, mqtt_factory, HostClock, out=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run the meter node's program on this computer")
    ap.add_argument("--config", required=True, type=Path, help="node_config.json (as `edge flash` writes it)")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--serial", help="serial port of an RS-485 adapter, e.g. /dev/ttyUSB0")
    where.add_argument("--serial-fd", type=int, help="an open file descriptor (a pseudo-terminal end)")
    ap.add_argument("--turns", type=int, default=None, help="stop after this many loop turns")
    args = ap.parse_args(argv)
    try:
        raw = json.loads(args.config.read_text())
        cfg = parse(raw)
    except (OSError, ValueError) as exc:
        print("error: %s: %s" % (args.config, exc), file=sys.stderr)
        return 2
    except ValidationError as exc:
        print("error in %s: %s" % (args.config, exc), file=sys.stderr)
        return 2
    u = cfg["uart"]
    uart = FdUart(args.serial_fd) if args.serial_fd is not None else \
        SerialUart(args.serial, u["baudrate"], u["parity"], u["stopbits"])
    node = build_node(raw, uart, out=lambda line: print(line, flush=True))
    try:
        node.run(args.turns)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
