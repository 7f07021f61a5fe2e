"""A pseudo-terminal pair for the node's tests: a pymodbus RTU server opens one end by
its path (as it would a serial port), the node's RTU master reads and writes the other."""
from __future__ import annotations

import os
import tty

from host_tools.node_host import FdUart


class PtyPair:
    def __init__(self):
        self.master_fd, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)
        tty.setraw(self.master_fd)
        self.slave_path = os.ttyname(self.slave_fd)

    def close(self):
        for fd in (self.master_fd, self.slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass


class RecordingUart(FdUart):
    """Keeps every request written and the bytes read after it: the exchange a
    MicroPython test replays (tests/node/rtu_replay.json)."""

    def __init__(self, fd: int):
        super().__init__(fd)
        self.exchanges: list[list[bytes]] = []

    def write(self, data: bytes) -> int:
        self.exchanges.append([bytes(data), b""])
        return super().write(data)

    def read(self, n: int):
        got = super().read(n)
        if got and self.exchanges:
            self.exchanges[-1][1] += got
        return got
