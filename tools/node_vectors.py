"""Writes tests/node/vectors.json: what pymodbus and the msgpack package make of the
frames and values the meter node sends or receives.

The node's own Modbus RTU master and msgpack encoder (edge/node) are tested
against this file under CPython and under MicroPython; a CPython test runs this
generator again and compares, so the file can never drift from the libraries.

    .venv/bin/python tools/node_vectors.py            # rewrite the file
    .venv/bin/python tools/node_vectors.py --check    # exit 1 if it differs

Values that JSON cannot carry are tagged: {"bin": hex} bytes, {"map": [[k, v], ...]}
a map in that order, {"tuple": [...]}, {"rep": [item, n]} a list of n items,
{"str_rep": [text, n]}, {"bin_rep": [hex, n]}, {"int_map": n} the map i -> -i
for i < n. Large results are given by
length and sha256 instead of their bytes.
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections import OrderedDict
from pathlib import Path

import msgpack
from pymodbus.framer.rtu import FramerRTU
from pymodbus.pdu import ExceptionResponse
from pymodbus.pdu.decoders import DecodePDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
    ReadInputRegistersRequest,
    ReadInputRegistersResponse,
)

OUT = Path(__file__).resolve().parent.parent / "tests" / "node" / "vectors.json"
INLINE_MAX = 300       # bytes; longer results are stored as length + sha256

CRC_INPUTS = ["", "00", "01", "ff", "0103000000 0a".replace(" ", ""), "010400000012",
              "11030006 0001".replace(" ", ""), "0103" + "ab" * 250,
              "".join("%02x" % b for b in range(256))]

REQUESTS = [(1, 3, 0, 1), (1, 4, 0, 18), (247, 4, 0, 125), (3, 3, 0x5B00, 22), (17, 3, 19000, 28),
            (1, 4, 52, 2), (1, 4, 72, 4), (2, 3, 40000, 2), (5, 3, 65535, 1), (9, 4, 65411, 125)]

REPLIES = [(1, 4, [0x4366, 0x1999]), (1, 3, [0]), (247, 3, [0xFFFF] * 125),
           (3, 4, [0x1234, 0x5678, 0x9ABC, 0xDEF0]), (17, 3, list(range(0, 28 * 1000, 1000)))]

EXCEPTIONS = [(1, 3, 1), (1, 4, 2), (247, 3, 3), (3, 4, 4), (5, 3, 6), (9, 4, 11)]

MSGPACK = [
    None, True, False,
    0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 2 ** 63, 2 ** 64 - 1,
    -1, -31, -32, -33, -128, -129, -32768, -32769, -2 ** 31, -2 ** 31 - 1, -2 ** 63,
    0.0, 0.5, -2.25, 1e300, 230.1, -0.1,
    "", "a", "x" * 31, "x" * 32, "x" * 255, "x" * 256, "Zähler €", {"str_rep": ["y", 65535]},
    {"str_rep": ["y", 65536]},
    {"bin": ""}, {"bin": "00ff"}, {"bin_rep": ["ab", 255]}, {"bin_rep": ["ab", 256]},
    {"bin_rep": ["cd", 65536]},
    [], [1, 2, 3], list(range(15)), list(range(16)), {"rep": [7, 65535]}, {"rep": [7, 65536]},
    {"tuple": [1, "a", None]},
    {"map": []}, {"map": [["a", 1]]}, {"map": [[str(i), i] for i in range(15)]},
    {"map": [[str(i), i] for i in range(16)]}, {"int_map": 70000},
    {"map": [[1, "int key"], ["n", None], ["list", [1, [2, [3]]]]]},
    # The node's own messages (edge/node/messages.py), as it builds them.
    {"map": [["v", 1], ["node", "garage-1"], ["seq", 4294967295], ["unit", 1], ["model", "eastron_sdm630"],
             ["age_ms", 14], ["reply_ms", 48],
             ["blocks", [[0, [17254, 6554, 0, 0]], [52, [0x4510, 0x2000]]]]]},
    {"map": [["v", 1], ["node", "garage-1"], ["seq", 0], ["unit", 2], ["model", "abb_b23"],
             ["age_ms", 0], ["error", "timeout"], ["detail", "no answer within 500 ms"]]},
    {"map": [["v", 1], ["node", "garage-1"], ["online", True], ["uptime_ms", 0], ["reset_cause", 3]]},
]


def build(value):
    """The tagged JSON value as a Python object (same rules as tests/node/vector_values.py)."""
    if isinstance(value, list):
        return [build(v) for v in value]
    if isinstance(value, dict):
        (tag, arg), = value.items()
        if tag == "bin":
            return bytes.fromhex(arg)
        if tag == "map":
            return OrderedDict((build(k), build(v)) for k, v in arg)
        if tag == "tuple":
            return tuple(build(v) for v in arg)
        if tag == "rep":
            return [build(arg[0])] * arg[1]
        if tag == "str_rep":
            return arg[0] * arg[1]
        if tag == "bin_rep":
            return bytes.fromhex(arg[0]) * arg[1]
        if tag == "int_map":
            return OrderedDict((i, -i) for i in range(arg))
        raise ValueError(tag)
    return value


def expect(data: bytes) -> dict:
    if len(data) <= INLINE_MAX:
        return {"hex": data.hex()}
    return {"len": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def generate() -> dict:
    framer = FramerRTU(DecodePDU(False))
    crc = [{"data": d, "crc": _crc_int(bytes.fromhex(d))} for d in CRC_INPUTS]
    requests = []
    for unit, fc, address, count in REQUESTS:
        cls = ReadHoldingRegistersRequest if fc == 3 else ReadInputRegistersRequest
        frame = framer.buildFrame(cls(dev_id=unit, address=address, count=count))
        requests.append({"unit": unit, "fc": fc, "address": address, "count": count, "hex": frame.hex()})
    replies = []
    for unit, fc, words in REPLIES:
        cls = ReadHoldingRegistersResponse if fc == 3 else ReadInputRegistersResponse
        frame = framer.buildFrame(cls(dev_id=unit, registers=words))
        replies.append({"unit": unit, "fc": fc, "count": len(words), "words": words, "hex": frame.hex()})
    exceptions = []
    for unit, fc, code in EXCEPTIONS:
        frame = framer.buildFrame(ExceptionResponse(fc, code, device_id=unit))
        exceptions.append({"unit": unit, "fc": fc, "code": code, "hex": frame.hex()})
    packed = [dict({"value": v}, **expect(msgpack.packb(build(v)))) for v in MSGPACK]
    return {"about": "generated by tools/node_vectors.py with pymodbus and the msgpack package; do not edit",
            "crc": crc, "requests": requests, "replies": replies, "exceptions": exceptions,
            "msgpack": packed}


def _crc_int(data: bytes) -> int:
    # pymodbus returns the CRC byte-swapped so that to_bytes(2, "big") gives wire order.
    swapped = FramerRTU.compute_CRC(data)
    return ((swapped & 0xFF) << 8) | (swapped >> 8)


def render() -> str:
    return json.dumps(generate(), indent=None, separators=(",", ":")).replace('},{', '},\n{') + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUT.read_text() != text:
            print("%s differs from what the libraries produce now; run tools/node_vectors.py" % OUT,
                  file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print("wrote %s (%d bytes)" % (OUT, len(text)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
