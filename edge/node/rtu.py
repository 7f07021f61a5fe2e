"""A minimal Modbus RTU master for the meter node (MicroPython and CPython).

pymodbus does not run on MicroPython, and the node only ever asks one thing
of a meter: "read N holding (fc 3) or input (fc 4) registers from address A".
So this module knows exactly that request, its reply, and the exception
reply, and checks every byte of what comes back (device, function code, byte
count, CRC) before a word of it is believed.

The UART is anything with ``write(bytes)``, ``any() -> int`` and
``read(n) -> bytes | None`` (``machine.UART`` on a board, a pseudo-terminal
on CPython). An RS-485 transceiver's driver-enable pin, if the board has one,
is raised for the request and dropped before the reply can start; with an
auto-direction transceiver there is no pin at all.

Framing facts (Modbus over Serial Line V1.02, 2.5.1): a frame is device
address, function code, data, CRC-16 (polynomial 0xA001 reflected, initial
0xFFFF) sent low byte first; frames are separated by at least 3.5 character
times of silence.
"""

EXCEPTION_NAMES = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value",
    4: "server device failure", 5: "acknowledge", 6: "server device busy",
    8: "memory parity error", 10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}

READ_FUNCTIONS = (3, 4)
MAX_COUNT = 125          # registers per read request (the protocol's limit)


def crc16(data):
    """Modbus CRC-16 of ``data`` as an int; the frame carries it low byte first."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0xA001
            else:
                crc >>= 1
    return crc


def with_crc(body):
    crc = crc16(body)
    return bytes(body) + bytes((crc & 0xFF, crc >> 8))


def read_request(unit, fc, address, count):
    """The whole RTU frame asking device ``unit`` for ``count`` registers at ``address``."""
    if fc not in READ_FUNCTIONS:
        raise ValueError("function code must be 3 or 4, got %r" % (fc,))
    if not 1 <= unit <= 247:
        raise ValueError("device address must be 1..247 on a serial bus, got %r" % (unit,))
    if not 1 <= count <= MAX_COUNT or not 0 <= address or address + count > 65536:
        raise ValueError("cannot read %r registers at %r" % (count, address))
    return with_crc(bytes((unit, fc, address >> 8, address & 0xFF, count >> 8, count & 0xFF)))


class RtuError(Exception):
    """A read failed. ``kind``: timeout, exception, protocol (as the gateway's meter errors)."""

    kind = "protocol"


class RtuTimeout(RtuError):
    kind = "timeout"


class RtuExceptionReply(RtuError):
    kind = "exception"

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def reply_length(unit, fc, head):
    """How long the reply that starts with ``head`` will be; 0 if ``head`` is too short to
    tell, -1 if it cannot be the reply to this request (wrong device or function)."""
    if len(head) < 2:
        return 0
    if head[0] != unit or head[1] not in (fc, fc | 0x80):
        return -1
    if head[1] & 0x80:
        return 5
    if len(head) < 3:
        return 0
    return 5 + head[2]


def parse_reply(unit, fc, count, frame):
    """The words of a complete reply frame; raises RtuError saying what is wrong."""
    if len(frame) < 5:
        raise RtuError("reply of %d bytes is too short" % len(frame))
    crc = crc16(frame[:-2])
    if frame[-2] != crc & 0xFF or frame[-1] != crc >> 8:
        raise RtuError("CRC error in a reply of %d bytes" % len(frame))
    if frame[0] != unit:
        raise RtuError("reply from device %d, asked device %d" % (frame[0], unit))
    if frame[1] == fc | 0x80:
        if len(frame) != 5:
            raise RtuError("exception reply of %d bytes" % len(frame))
        code = frame[2]
        raise RtuExceptionReply("exception %d (%s)" % (code, EXCEPTION_NAMES.get(code, "unknown")), code)
    if frame[1] != fc:
        raise RtuError("function code 0x%02x in answer to fc%d" % (frame[1], fc))
    if frame[2] != 2 * count or len(frame) != 5 + 2 * count:
        raise RtuError("asked for %d registers, got %d bytes" % (count, frame[2]))
    words = []
    for i in range(3, 3 + 2 * count, 2):
        words.append((frame[i] << 8) | frame[i + 1])
    return words


class RtuMaster:
    """Reads registers over one UART. ``clock`` has ``ticks_ms()``, ``ticks_diff(a, b)`` and
    ``sleep_ms(n)`` (MicroPython's ``time`` module, or its stand-in on CPython)."""

    def __init__(self, uart, clock, de_pin=None, baudrate=9600, timeout_ms=500, gap_ms=None):
        self.uart = uart
        self.clock = clock
        self.de_pin = de_pin
        self.timeout_ms = timeout_ms
        # One character is 11 bits (start, 8 data, parity or second stop, stop).
        self.char_us = 11000000 // baudrate
        # 3.5 characters of silence end a frame; above 19200 baud the spec fixes 1.75 ms.
        self.gap_ms = gap_ms if gap_ms is not None else max(2, (self.char_us * 35 // 10 + 999) // 1000)
        if de_pin is not None:
            de_pin.value(0)

    def _drain(self):
        # Whatever is waiting is a late answer to an earlier request or line noise:
        # it must not be taken for the answer to this one.
        dropped = 0
        n = self.uart.any()
        while n:
            got = self.uart.read(n)
            dropped += len(got) if got else 0
            n = self.uart.any()
        return dropped

    def _send(self, frame):
        de = self.de_pin
        if de is not None:
            de.value(1)
        self.uart.write(frame)
        if de is not None:
            # Hold the driver until the last stop bit has left, then free the line
            # for the meter's answer (which may start 3.5 characters later).
            flush = getattr(self.uart, "flush", None)
            if flush is not None:
                flush()
            else:
                self.clock.sleep_ms((len(frame) * self.char_us + 999) // 1000 + 1)
            de.value(0)

    def read(self, unit, fc, address, count):
        """``count`` registers as a list of ints; raises RtuTimeout, RtuExceptionReply, RtuError."""
        request = read_request(unit, fc, address, count)
        self._drain()
        clock = self.clock
        clock.sleep_ms(self.gap_ms)
        self._send(request)
        start = clock.ticks_ms()
        last_rx = start
        buf = b""
        need = 0
        while True:
            n = self.uart.any()
            now = clock.ticks_ms()
            if n:
                got = self.uart.read(n)
                if got:
                    buf += got
                    last_rx = now
                    need = reply_length(unit, fc, buf)
                    if need > 0 and len(buf) >= need:
                        break
                    continue
            if need < 0 and clock.ticks_diff(now, last_rx) > self.gap_ms:
                break           # a frame that is not our answer has ended
            if clock.ticks_diff(now, start) > self.timeout_ms:
                if buf:
                    if need <= 0:
                        break
                    raise RtuTimeout("device %d fc%d @%d x%d: answer cut off after %d of %d bytes"
                                     % (unit, fc, address, count, len(buf), need))
                raise RtuTimeout("device %d fc%d @%d x%d: no answer within %d ms"
                                 % (unit, fc, address, count, self.timeout_ms))
            clock.sleep_ms(1)
        if need < 0 or len(buf) > need:
            raise RtuError("device %d fc%d @%d x%d: unusable answer (%d bytes starting %s)"
                           % (unit, fc, address, count, len(buf), _hex(buf[:4])))
        try:
            return parse_reply(unit, fc, count, buf)
        except RtuExceptionReply as exc:
            raise RtuExceptionReply("device %d fc%d @%d x%d: %s" % (unit, fc, address, count, exc),
                                    exc.code)
        except RtuError as exc:
            raise RtuError("device %d fc%d @%d x%d: %s" % (unit, fc, address, count, exc))


def _hex(data):
    return " ".join("%02x" % b for b in data)
