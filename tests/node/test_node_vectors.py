"""The node's RTU framing and msgpack encoder, byte for byte against what pymodbus and
the msgpack package produce (tests/node/vectors.json, made by tools/node_vectors.py).
Runs under pytest and under MicroPython (make test-mp)."""
import hashlib

from node_kit import build, load, tohex, unhex

from edge.node import rtu
from edge.node.msgpack_encode import pack

V = load("vectors.json")


def test_crc16_matches_pymodbus():
    assert len(V["crc"]) >= 8
    for case in V["crc"]:
        assert rtu.crc16(unhex(case["data"])) == case["crc"], case["data"][:20]


def test_read_requests_match_pymodbus_frames():
    assert len(V["requests"]) >= 8
    for case in V["requests"]:
        frame = rtu.read_request(case["unit"], case["fc"], case["address"], case["count"])
        assert tohex(frame) == case["hex"], case


def test_replies_parse_to_the_words_pymodbus_encoded():
    for case in V["replies"]:
        frame = unhex(case["hex"])
        assert rtu.reply_length(case["unit"], case["fc"], frame[:3]) == len(frame)
        assert rtu.parse_reply(case["unit"], case["fc"], case["count"], frame) == case["words"]


def test_exception_replies_are_recognised_with_their_code():
    for case in V["exceptions"]:
        frame = unhex(case["hex"])
        assert rtu.reply_length(case["unit"], case["fc"], frame[:2]) == 5
        try:
            rtu.parse_reply(case["unit"], case["fc"], 1, frame)
        except rtu.RtuExceptionReply as exc:
            assert exc.code == case["code"]
            assert exc.kind == "exception"
        else:
            raise AssertionError("exception reply accepted: " + case["hex"])


def test_msgpack_bytes_equal_the_msgpack_package():
    assert len(V["msgpack"]) >= 50
    for case in V["msgpack"]:
        data = pack(build(case["value"]))
        if "hex" in case:
            assert tohex(data) == case["hex"], (case["value"], tohex(data)[:80])
        else:
            assert len(data) == case["len"], case["value"]
            assert tohex(hashlib.sha256(data).digest()) == case["sha256"], case["value"]


def test_msgpack_refuses_what_it_cannot_encode():
    for bad in (2 ** 64, -2 ** 63 - 1, object()):
        try:
            pack(bad)
        except (ValueError, TypeError):
            continue
        raise AssertionError("encoded %r" % (bad,))
