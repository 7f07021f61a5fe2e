"""The node's RTU master against a simulated UART (virtual time): good answers,
exception answers and every way an answer can be wrong. Runs under pytest and
MicroPython."""
from node_kit import FakeClock, Pin, ReplayUart

from edge.node import rtu


def reply(unit, fc, words):
    body = bytes([unit, fc, 2 * len(words)])
    for w in words:
        body += bytes([w >> 8, w & 0xFF])
    return rtu.with_crc(body)


def master_for(replies, **kw):
    clock = FakeClock()
    uart = ReplayUart(clock, replies, **{k: v for k, v in kw.items() if k in ("delay_ms", "chunk")})
    de = kw.get("de")
    m = rtu.RtuMaster(uart, clock, de_pin=de, timeout_ms=kw.get("timeout_ms", 300))
    return m, uart, clock


def expect_error(fn, cls, *words):
    try:
        fn()
    except cls as exc:
        for w in words:
            assert w in str(exc), (w, str(exc))
        return exc
    raise AssertionError("no %s" % cls.__name__)


def test_reads_words_and_drives_the_de_pin_around_the_request():
    req = rtu.read_request(1, 4, 0, 2)
    de = Pin()
    m, uart, _ = master_for({req: reply(1, 4, [0x4366, 0x1999])}, de=de)
    assert m.read(1, 4, 0, 2) == [0x4366, 0x1999]
    assert uart.written == [req]
    assert de.history == [0, 1, 0]       # low at start, high to send, low for the answer


def test_exception_answer_names_the_code():
    req = rtu.read_request(3, 3, 100, 2)
    m, _, _ = master_for({req: rtu.with_crc(bytes([3, 0x83, 2]))})
    exc = expect_error(lambda: m.read(3, 3, 100, 2), rtu.RtuExceptionReply, "illegal data address",
                       "device 3 fc3 @100 x2")
    assert exc.code == 2 and exc.kind == "exception"


def test_silence_is_a_timeout_after_timeout_ms():
    m, _, clock = master_for({})
    t0 = clock.now
    exc = expect_error(lambda: m.read(1, 4, 0, 2), rtu.RtuTimeout, "no answer within 300 ms")
    assert exc.kind == "timeout"
    assert 300 <= clock.now - t0 <= 320


def test_crc_error_is_refused():
    req = rtu.read_request(1, 4, 0, 2)
    bad = bytearray(reply(1, 4, [1, 2]))
    bad[-1] ^= 0xFF
    expect_error(lambda: master_for({req: bytes(bad)})[0].read(1, 4, 0, 2), rtu.RtuError, "CRC")


def test_answer_from_another_device_or_function_is_refused():
    req = rtu.read_request(1, 4, 0, 2)
    for wrong in (reply(2, 4, [1, 2]), reply(1, 3, [1, 2])):
        m = master_for({req: wrong})[0]
        expect_error(lambda: m.read(1, 4, 0, 2), rtu.RtuError, "unusable answer")


def test_byte_count_that_lies_is_refused():
    req = rtu.read_request(1, 4, 0, 2)
    m = master_for({req: reply(1, 4, [1, 2, 3])})[0]
    expect_error(lambda: m.read(1, 4, 0, 2), rtu.RtuError, "asked for 2 registers")


def test_answer_cut_off_is_a_timeout_naming_the_bytes():
    req = rtu.read_request(1, 4, 0, 2)
    m = master_for({req: reply(1, 4, [1, 2])[:6]})[0]
    expect_error(lambda: m.read(1, 4, 0, 2), rtu.RtuTimeout, "cut off after 6 of 9 bytes")


def test_late_bytes_waiting_on_the_line_are_dropped_before_a_request():
    req = rtu.read_request(1, 4, 0, 2)
    m, uart, _ = master_for({req: reply(1, 4, [7, 8])})
    uart.noise = reply(1, 4, [99, 99])          # the answer to an earlier, timed-out request
    assert m.read(1, 4, 0, 2) == [7, 8]


def test_answer_arriving_one_byte_at_a_time_is_assembled():
    req = rtu.read_request(9, 3, 0x5B00, 4)
    words = [0x1234, 0x5678, 0x9ABC, 0xDEF0]
    m = master_for({req: reply(9, 3, words)}, chunk=1)[0]
    assert m.read(9, 3, 0x5B00, 4) == words


def test_requests_outside_the_protocol_are_refused_before_sending():
    for args in ((0, 4, 0, 1), (248, 4, 0, 1), (1, 6, 0, 1), (1, 4, 0, 126), (1, 4, 65535, 2), (1, 3, 0, 0)):
        try:
            rtu.read_request(*args)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (args,))
