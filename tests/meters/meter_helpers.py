"""Helpers shared by the meter tests."""

import socket

from edge.meters import MeterConfig


def tcp_config(model, port, meter_id="m1", **kw):
    d = {"id": meter_id, "model": model, "host": "127.0.0.1", "port": port,
         "timeout_s": 0.3, "retries": 0}
    d.update(kw)
    return MeterConfig.from_dict(d)


def free_port():
    """A loopback port nobody listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FakeClock:
    def __init__(self, t=1_000_000.0):
        self.t = t

    def __call__(self):
        return self.t
