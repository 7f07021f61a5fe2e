"""Helpers for the node's portable tests (run by pytest and by MicroPython).

ReplayUart stands in for machine.UART: it answers each request frame with the
bytes recorded for it (from a pymodbus RTU server, see rtu_replay.json), so the
RTU master runs under MicroPython against exactly what it met on CPython.
"""
import json
from binascii import hexlify, unhexlify

HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."


def load(name):
    with open(HERE + "/" + name) as f:
        return json.load(f)


def unhex(text):
    return unhexlify(text) if text else b""


def tohex(data):
    return hexlify(data).decode()


class Pairs:
    """A map in a fixed order (MicroPython's dict keeps none; its OrderedDict is slow to
    fill with 70,000 keys). The encoder takes anything with items()."""

    def __init__(self, pairs):
        self.pairs = pairs

    def items(self):
        return self.pairs


def build(value):
    """A tagged vector value as the object to encode (tools/node_vectors.py has the tags)."""
    if isinstance(value, list):
        return [build(v) for v in value]
    if isinstance(value, dict):
        tag, arg = list(value.items())[0]
        if tag == "bin":
            return unhex(arg)
        if tag == "map":
            return Pairs([(build(k), build(v)) for k, v in arg])
        if tag == "tuple":
            return tuple(build(v) for v in arg)
        if tag == "rep":
            return [build(arg[0])] * arg[1]
        if tag == "str_rep":
            return arg[0] * arg[1]
        if tag == "bin_rep":
            return unhex(arg[0]) * arg[1]
        if tag == "int_map":
            return Pairs([(i, -i) for i in range(arg)])
        raise ValueError(tag)
    return value


class FakeClock:
    """MicroPython's ticks, in virtual time: sleep_ms advances it."""

    def __init__(self, start=1000):
        self.now = start
        self.slept = 0

    def ticks_ms(self):
        return self.now

    def ticks_add(self, t, ms):
        return t + ms

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        self.now += ms
        self.slept += ms


class ReplayUart:
    """Answers request frames from a table {request bytes: reply bytes}; a request not in
    the table gets no answer. ``delay_ms`` holds each reply back that long (virtual time);
    ``chunk`` hands the reply out that many bytes per read."""

    def __init__(self, clock, replies, delay_ms=5, chunk=7):
        self.clock = clock
        self.replies = replies
        self.delay_ms = delay_ms
        self.chunk = chunk
        self.written = []
        self.pending = b""
        self.ready_at = 0
        self.noise = b""

    def write(self, data):
        data = bytes(data)
        self.written.append(data)
        self.pending = self.replies.get(data, b"")
        self.ready_at = self.clock.ticks_ms() + self.delay_ms
        return len(data)

    def any(self):
        if self.noise:
            return len(self.noise)
        if self.pending and self.clock.ticks_ms() >= self.ready_at:
            return min(self.chunk, len(self.pending))
        return 0

    def read(self, n):
        if self.noise:
            got, self.noise = self.noise[:n], self.noise[n:]
            return got
        if not self.any():
            return None
        got, self.pending = self.pending[:n], self.pending[n:]
        return got


class Pin:
    def __init__(self):
        self.history = []

    def value(self, v=None):
        if v is not None:
            self.history.append(v)
        return self.history[-1] if self.history else 0
