"""The meter node's program: poll the meters on the RS-485 bus, publish each reading.

The same code runs on a board (edge/node/board.py gives it the UART, watchdog,
LED and Wi-Fi) and on CPython (host_tools/node_host.py gives it a serial port
or pseudo-terminal, and runs micropython-lib's own umqtt.simple over a socket
shim). Everything it touches comes in as an argument:

    clock         ticks_ms(), ticks_add(t, ms), ticks_diff(a, b), sleep_ms(n)
                  (MicroPython's time module: ticks wrap, so only these do arithmetic)
    master        edge.node.rtu.RtuMaster over the UART
    mqtt_factory  (client_id, server, port, user, password, keepalive) -> a client
                  with umqtt.simple's API (set_last_will, connect, publish, ping)
    wdt           feed() or None;  led: value(v) or None;  out: print

One loop, no threads: umqtt.simple blocks while it connects and sends. A poll
is never skipped for the broker's sake: a broker that is away only delays the
reconnect (backoff 1 s doubling to 60 s, with jitter), and readings taken while
it is away are dropped, not queued; a late reading is worse than none, the
gateway goes fail-safe on its own. The watchdog is fed once per loop turn, so a
hang anywhere (a TCP connect that never returns, a wedged UART) resets the
board within ``watchdog_ms``.
"""

from edge.node import messages
from edge.node.msgpack_encode import pack
from edge.node.rtu import RtuError
from edge.node.sunspec import find_model

BACKOFF_FIRST_MS = 1000
BACKOFF_MAX_MS = 60000


class Node:
    def __init__(self, cfg, master, mqtt_factory, clock, wdt=None, led=None, out=print,
                 reset_cause=None):
        self.cfg = cfg
        self.node_id = cfg["node_id"]
        self.master = master
        self.mqtt_factory = mqtt_factory
        self.clock = clock
        self.wdt = wdt
        self.led = led
        self.out = out
        self.reset_cause = reset_cause
        self.started = clock.ticks_ms()
        self.client = None
        self.seq = 0
        self.sent = 0
        self.dropped = 0
        self.backoff_ms = 0
        self.next_connect = self.started
        self.next_poll = self.started
        self.last_tx = self.started
        self.broker_note = "not connected yet"
        self.meter_notes = {}
        self.origins = {}           # unit -> SunSpec model address, once found
        self._line = None
        self._blink = 0
        self._rand = (self.started * 2654435761 + 1) & 0x7FFFFFFF
        self.reading_topic = messages.reading_topic(self.node_id)
        self.status_topic = messages.status_topic(self.node_id)

    # -- broker ---------------------------------------------------------------------------
    def _jitter(self, ms):
        # +-25 %, so that nodes that lost the broker together do not return together.
        self._rand = (self._rand * 1103515245 + 12345) & 0x7FFFFFFF
        return ms * 3 // 4 + (self._rand % (ms // 2 + 1))

    def connect(self):
        b = self.cfg["broker"]
        now = self.clock.ticks_ms()
        client = None
        try:
            client = self.mqtt_factory(self.node_id, b["host"], b["port"], b["user"], b["password"],
                                       b["keepalive_s"])
            client.set_last_will(self.status_topic, pack(messages.status(self.node_id, False)),
                                 True, 1)
            client.connect()
            uptime = self.clock.ticks_diff(now, self.started)
            client.publish(self.status_topic,
                           pack(messages.status(self.node_id, True, uptime, self.reset_cause)), True)
        except Exception as exc:   # OSError, MQTTException(code), or a garbled CONNACK
            self._close(client)
            self.backoff_ms = min(BACKOFF_MAX_MS, max(BACKOFF_FIRST_MS, self.backoff_ms * 2))
            self.next_connect = self.clock.ticks_add(self.clock.ticks_ms(), self._jitter(self.backoff_ms))
            self.broker_note = "%s:%d refused or unreachable (%s), retry in %d s" % (
                b["host"], b["port"], _why(exc), (self.backoff_ms + 999) // 1000)
            return False
        self.client = client
        self.backoff_ms = 0
        self.last_tx = self.clock.ticks_ms()
        self.broker_note = "%s:%d up" % (b["host"], b["port"])
        return True

    def _close(self, client):
        sock = getattr(client, "sock", None)
        if sock is not None:
            try:
                sock.close()
            except Exception:
                pass

    def _lost(self, exc):
        # The broker publishes our last will when it notices; we only start over.
        self._close(self.client)
        self.client = None
        self.backoff_ms = BACKOFF_FIRST_MS // 2
        self.next_connect = self.clock.ticks_add(self.clock.ticks_ms(), self._jitter(BACKOFF_FIRST_MS))
        self.broker_note = "connection lost (%s), reconnecting" % _why(exc)

    def publish(self, msg):
        if self.client is None:
            self.dropped += 1
            return False
        try:
            self.client.publish(self.reading_topic, pack(msg))
        except Exception as exc:
            self.dropped += 1
            self._lost(exc)
            return False
        self.sent += 1
        self.last_tx = self.clock.ticks_ms()
        return True

    # -- meters ---------------------------------------------------------------------------
    def _read(self, meter, address, count):
        """One request, asked again up to ``retries`` times (not after an exception answer:
        the meter said no, and asking again changes nothing)."""
        attempt = 0
        while True:
            if self.wdt is not None:
                self.wdt.feed()
            try:
                return self.master.read(meter["unit"], meter["fc"], address, count)
            except RtuError as exc:
                attempt += 1
                if exc.kind == "exception" or attempt > self.cfg["retries"]:
                    raise

    def _origin(self, meter):
        """Where the meter's blocks count from: 0, or a SunSpec model's address (found once,
        and again after any failure: the device may have been replaced)."""
        spec = meter["sunspec"]
        if spec is None:
            return 0
        origin = self.origins.get(meter["unit"])
        if origin is None:
            origin = find_model(lambda a, c: self._read(meter, a, c), spec["bases"], spec["ids"],
                                spec["length"])
            self.origins[meter["unit"]] = origin
        return origin

    def poll(self, meter):
        """One read of one meter: (message, ticks when the meter last answered)."""
        clock = self.clock
        start = clock.ticks_ms()
        blocks = []
        error = None
        origin = 0
        try:
            origin = self._origin(meter)
            for address, count in meter["blocks"]:
                blocks.append([origin + address, self._read(meter, origin + address, count)])
        except RtuError as exc:
            error = exc
            self.origins.pop(meter["unit"], None)
        end = clock.ticks_ms()
        seq = self.seq
        self.seq += 1
        if error is None:
            self.meter_notes[meter["unit"]] = "ok (%d ms)" % clock.ticks_diff(end, start)
            msg = messages.reading(self.node_id, seq, meter["unit"], meter["model"], 0,
                                   clock.ticks_diff(end, start), blocks)
            if meter["sunspec"] is not None:
                msg["origin"] = origin
        else:
            self.meter_notes[meter["unit"]] = "FAILING: %s" % error
            msg = messages.failure(self.node_id, seq, meter["unit"], meter["model"], 0,
                                   error.kind, str(error))
        return msg, end

    # -- the loop -------------------------------------------------------------------------
    def step(self):
        """One turn: reconnect if due, poll if due. Returns ms until the next poll."""
        clock = self.clock
        if self.wdt is not None:
            self.wdt.feed()
        now = clock.ticks_ms()
        if self.client is None and clock.ticks_diff(now, self.next_connect) >= 0:
            self.connect()
        now = clock.ticks_ms()
        if clock.ticks_diff(now, self.next_poll) >= 0:
            self.next_poll = clock.ticks_add(now, self.cfg["interval_ms"])
            for meter in self.cfg["meters"]:
                msg, read_at = self.poll(meter)
                msg["age_ms"] = clock.ticks_diff(clock.ticks_ms(), read_at)
                self.publish(msg)
        elif self.client is not None and clock.ticks_diff(now, self.last_tx) > \
                self.cfg["broker"]["keepalive_s"] * 500:
            try:
                self.client.ping()
                self.last_tx = now
            except Exception as exc:
                self._lost(exc)
        self.show()
        return max(0, clock.ticks_diff(self.next_poll, clock.ticks_ms()))

    def show(self):
        """The installer's view: one REPL line whenever the state changes, and the LED
        (on: broker up and every meter answers; blinking: a meter fails; off: no broker)."""
        meters = " | ".join("unit %d %s" % (m["unit"], self.meter_notes.get(m["unit"], "not read yet"))
                            for m in self.cfg["meters"])
        line = "node %s: broker %s | %s" % (self.node_id, self.broker_note, meters)
        if line != self._line:
            self._line = line
            self.out(line)
        if self.led is not None:
            failing = False
            for note in self.meter_notes.values():
                if note.startswith("FAILING"):
                    failing = True
            self._blink ^= 1
            self.led.value(0 if self.client is None else (self._blink if failing else 1))

    def run(self, turns=None):
        """Loop forever (or ``turns`` times, for tests)."""
        n = 0
        while turns is None or n < turns:
            wait = self.step()
            n += 1
            # Sleep in slices so the watchdog is fed even with long intervals.
            while wait > 0:
                chunk = min(wait, 500)
                self.clock.sleep_ms(chunk)
                wait -= chunk
                if self.wdt is not None:
                    self.wdt.feed()


def _why(exc):
    text = "%s %s" % (type(exc).__name__, exc)
    return text[:80]
