"""How much heap the meter node program needs, measured under MicroPython.

    node tools/mp/mp.mjs script tests/node/measure_memory.py [POLLS]

Imports the node's modules (not board.py: the WebAssembly build has no `machine`),
builds a Node for one SDM630 (three read requests per poll) with a replayed UART and
an MQTT client that only counts bytes, runs POLLS polls and prints gc figures. The
WebAssembly build stands in for a board: same compiler and object model, but a board
also holds umqtt.simple, the network stack's buffers and the firmware's own objects.
"""
import gc
import sys

gc.collect()
start_alloc = gc.mem_alloc()

from edge.node import app, config, messages, msgpack_encode, rtu  # noqa: E402,F401

gc.collect()
imported = gc.mem_alloc() - start_alloc
umqtt = None
try:
    # umqtt.simple 1.3.4 imports the u-named modules; no network here, so usocket is a
    # stand-in that is never called (MP_EXTRA_LIB=.venv/mp-lib puts umqtt on /lib).
    import struct as _s
    import binascii as _b
    sys.modules["usocket"] = _s
    sys.modules["ustruct"] = _s
    sys.modules["ubinascii"] = _b
    before = gc.mem_alloc()
    from umqtt import simple  # noqa: F401
    gc.collect()
    umqtt = gc.mem_alloc() - before
except ImportError:
    pass

from node_kit import FakeClock, ReplayUart  # noqa: E402

try:
    from mp_args import ARGV
    polls = int(ARGV[1]) if len(ARGV) > 1 else 200
except ImportError:
    polls = int(sys.argv[1]) if len(sys.argv) > 1 else 200

BLOCKS = [[0, 18], [52, 2], [72, 4]]


def reply(unit, fc, count):
    body = bytes([unit, fc, 2 * count]) + bytes(2 * count)
    return rtu.with_crc(body)


class Sink:
    def __init__(self, *args):
        self.sock = None
        self.bytes = 0

    def set_last_will(self, *a):
        pass

    def connect(self):
        pass

    def publish(self, topic, msg, retain=False, qos=0):
        self.bytes += len(msg)

    def ping(self):
        pass


cfg = config.parse({"node_id": "garage-1", "broker": {"host": "10.0.0.2", "user": "garage-1", "password": "pw"},
                    "uart": {"id": 2, "tx": 17, "rx": 16, "de": 4},
                    "meters": [{"unit": 1, "model": "eastron_sdm630", "fc": 4, "blocks": BLOCKS}]})
clock = FakeClock()
replies = {}
for address, count in BLOCKS:
    replies[rtu.read_request(1, 4, address, count)] = reply(1, 4, count)
uart = ReplayUart(clock, replies)
node = app.Node(cfg, rtu.RtuMaster(uart, clock, timeout_ms=500), Sink, clock, out=lambda line: None)
gc.collect()
built = gc.mem_alloc() - start_alloc
peak = 0
for i in range(polls):
    before = gc.mem_alloc()
    node.step()
    clock.sleep_ms(cfg["interval_ms"])
    peak = max(peak, gc.mem_alloc() - before)
gc.collect()
# This WebAssembly build's gc.collect() frees nothing inside one script run (its stack
# scan keeps everything), so the growth over the polls is what they allocated in all.
per_poll = (gc.mem_alloc() - start_alloc - built) // max(1, polls)
print("node memory under", sys.implementation.name, sys.implementation.version)
print("imported_bytes", imported)
print("umqtt_simple_bytes", umqtt)
print("with_node_bytes", built)
print("allocated_per_poll_bytes", per_poll)
print("largest_poll_allocation_bytes", peak)
print("sent", node.sent, "seq", node.seq)
