"""The node program's loop (edge/node/app.py) with a replayed meter and a recording
MQTT client, in virtual time: what it publishes, its last will, reconnects with
backoff, the watchdog and the installer's status. Runs under pytest and MicroPython;
tests/meter_node runs the same program against Mosquitto and pymodbus."""
from node_kit import FakeClock, Pin, ReplayUart

from edge.node import app, messages, rtu
from edge.node.config import parse
from edge.core.errors import ValidationError

WORDS = [0x4366, 0x1999, 0x4366, 0x1999]


def reply(unit, fc, words):
    body = bytes([unit, fc, 2 * len(words)])
    for w in words:
        body += bytes([w >> 8, w & 0xFF])
    return rtu.with_crc(body)


def config(**over):
    d = {"node_id": "garage-1", "wifi": None,
         "broker": {"host": "10.0.0.2", "port": 1883, "user": "garage-1", "password": "pw"},
         "uart": {"id": 2, "tx": 17, "rx": 16, "de": 4},
         "interval_ms": 1000, "timeout_ms": 200, "retries": 1,
         "meters": [{"unit": 1, "model": "eastron_sdm630", "fc": 4, "blocks": [[0, 4], [52, 2]]}]}
    d.update(over)
    return parse(d)


class Broker:
    """What the node's MQTT clients did, and failures to inject."""

    def __init__(self):
        self.clients = []
        self.refuse = 0           # refuse this many connects
        self.fail_publish = False


class Client:
    def __init__(self, broker, args):
        self.broker = broker
        self.args = args
        self.will = None
        self.published = []
        self.connected = False
        self.pings = 0
        self.sock = self
        self.closed = False

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.will = (topic, msg, retain, qos)

    def connect(self, clean_session=True):
        if self.broker.refuse:
            self.broker.refuse -= 1
            raise OSError(111)
        self.connected = True

    def publish(self, topic, msg, retain=False, qos=0):
        if self.broker.fail_publish:
            raise OSError(104)
        self.published.append((topic, msg, retain))

    def ping(self):
        self.pings += 1

    def close(self):
        self.closed = True


def make(cfg=None, replies=None, **kw):
    cfg = cfg or config()
    clock = FakeClock()
    unit = cfg["meters"][0]["unit"]
    if replies is None:
        replies = {rtu.read_request(unit, 4, 0, 4): reply(unit, 4, WORDS),
                   rtu.read_request(unit, 4, 52, 2): reply(unit, 4, [0x4510, 0x2000])}
    uart = ReplayUart(clock, replies)
    master = rtu.RtuMaster(uart, clock, de_pin=Pin(), timeout_ms=cfg["timeout_ms"])
    broker = Broker()
    lines = []

    def factory(*args):
        c = Client(broker, args)
        broker.clients.append(c)
        return c
    node = app.Node(cfg, master, factory, clock, out=lines.append, **kw)
    return node, broker, clock, lines, uart


def readings(broker):
    out = []
    for c in broker.clients:
        for topic, msg, retain in c.published:
            if topic == "nodes/garage-1/reading":
                assert retain is False
                out.append(msg)
    return out


def test_connects_with_its_own_account_and_an_offline_will_then_publishes_online():
    node, broker, _, _, _ = make()
    node.step()
    c = broker.clients[0]
    assert c.args == ("garage-1", "10.0.0.2", 1883, "garage-1", "pw", 30)
    topic, will, retain, qos = c.will
    assert (topic, retain, qos) == ("nodes/garage-1/status", True, 1)
    # A map of three: v=1, node, online=false (in whatever order the runtime's dict keeps).
    assert will[0] == 0x83 and len(will) == 1 + 3 + 14 + 8
    for part in (b"\xa1v\x01", b"\xa4node\xa8garage-1", b"\xa6online\xc2"):
        assert part in will
    topic, msg, retain = c.published[0]
    assert topic == "nodes/garage-1/status" and retain is True
    assert b"\xa6online\xc3" in msg


def test_each_poll_publishes_the_registers_with_a_sequence_number():
    node, broker, clock, _, _ = make()
    node.run(turns=3)
    msgs = readings(broker)
    assert len(msgs) == 3
    for seq, msg in enumerate(msgs):
        # Byte-exact: map order differs between runtimes, so compare the parts.
        assert b"\xa3seq" + bytes([seq]) in msg
        assert b"\xa6blocks\x92\x92\x00\x94\xcdCf\xcd\x19\x99\xcdCf\xcd\x19\x99\x92\x34\x92\xcd\x45\x10\xcd\x20\x00" in msg
        assert b"\xa8reply_ms" in msg and b"\xa6age_ms\x00" in msg
    assert node.seq == 3 and node.sent == 3
    assert clock.now >= 1000 + 2 * 1000     # one poll per interval


def test_a_silent_meter_is_published_as_a_failure_after_the_retries():
    cfg = config()
    node, broker, _, lines, uart = make(cfg, replies={})
    node.step()
    msgs = readings(broker)
    assert len(msgs) == 1
    assert b"\xa5error\xa7timeout" in msgs[0] and b"no answer within 200 ms" in msgs[0]
    assert len(uart.written) == 2               # the first block, asked twice (retries=1)
    assert "unit 1 FAILING" in lines[-1]


def test_an_exception_answer_is_not_retried():
    unit = 1
    node, broker, _, _, uart = make(replies={rtu.read_request(unit, 4, 0, 4): rtu.with_crc(bytes([1, 0x84, 2]))})
    node.step()
    assert len(uart.written) == 1
    assert b"\xa5error\xa9exception" in readings(broker)[0]


def test_broker_away_means_backoff_doubling_and_readings_dropped_not_queued():
    node, broker, clock, lines, _ = make()
    broker.refuse = 3
    attempts = []
    for _ in range(40):
        before = len(broker.clients)
        node.step()
        if len(broker.clients) > before:
            attempts.append(clock.now)
        clock.sleep_ms(250)
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert len(attempts) == 4, attempts                 # three refused, the fourth gets in
    assert 750 <= gaps[0] <= 1500 and 1500 <= gaps[1] <= 2750 and 3000 <= gaps[2] <= 5250, gaps
    assert node.dropped > 0
    assert node.client is not None and node.backoff_ms == 0
    assert any("refused or unreachable" in line for line in lines)
    assert "broker 10.0.0.2:1883 up" in lines[-1]


def test_a_lost_connection_is_closed_and_reopened():
    node, broker, clock, _, _ = make()
    node.step()
    broker.fail_publish = True
    clock.sleep_ms(1000)
    node.step()
    assert node.client is None and broker.clients[0].closed
    broker.fail_publish = False
    for _ in range(10):
        clock.sleep_ms(500)
        node.step()
    assert len(broker.clients) == 2 and broker.clients[1].connected
    assert readings(broker)


def test_the_watchdog_is_fed_while_waiting_and_the_led_shows_the_state():
    class Wdt:
        fed = 0

        def feed(self):
            Wdt.fed += 1
    led = Pin()
    node, broker, clock, _, _ = make(cfg=config(interval_ms=5000), wdt=Wdt(), led=led)
    node.run(turns=2)
    assert Wdt.fed >= 10                 # fed in the sleep slices, not only once per poll
    assert led.history[-1] == 1


def test_keepalive_ping_when_nothing_was_sent():
    node, broker, clock, _, _ = make(cfg=config(interval_ms=60000))
    node.step()
    clock.sleep_ms(16000)
    node.step()
    assert broker.clients[0].pings == 1


def test_status_line_only_when_something_changed():
    node, broker, _, lines, _ = make()
    node.run(turns=5)
    assert len(lines) == 1 and "unit 1 ok" in lines[0]


def test_config_refuses_mistakes_naming_the_field():
    bad = [({"node_id": "Garage 1"}, "node_id"),
           ({"broker": {"host": "h", "user": "other"}}, "broker.user"),
           ({"uart": {"id": 2, "baudrate": 9601}}, "uart.baudrate"),
           ({"meters": [{"unit": 1, "model": "m", "fc": 4, "blocks": [[0, 200]]}]}, "meters[0].blocks[0]"),
           ({"meters": [{"unit": 1, "model": "m", "fc": 4, "blocks": [[0, 2]]},
                        {"unit": 1, "model": "m", "fc": 4, "blocks": [[0, 2]]}]}, "meters[1].unit"),
           ({"colour": "red"}, "colour")]
    for over, field in bad:
        try:
            config(**over)
        except ValidationError as exc:
            assert exc.field == field, (exc.field, field)
            continue
        raise AssertionError("accepted %r" % (over,))
    assert messages.reading_topic("garage-1") == "nodes/garage-1/reading"


def test_a_sunspec_meter_is_found_once_and_its_origin_sent():
    from node_kit import load, unhex
    case = load("rtu_replay.json")["sunspec_meter"]
    replies = {}
    for request, answer in case["exchanges"]:
        replies[unhex(request)] = unhex(answer)
    cfg = config(meters=[{"unit": case["unit"], "model": "sunspec_meter", "fc": case["fc"],
                          "blocks": case["blocks"], "sunspec": case["sunspec"]}])
    node, broker, _, lines, uart = make(cfg, replies=replies)
    node.run(turns=2)
    msgs = readings(broker)
    assert len(msgs) == 2 and b"\xa5error" not in msgs[0]
    origin = case["origin"]
    assert b"\xa6origin\xcd" + bytes([origin >> 8, origin & 0xFF]) in msgs[0]
    # Discovery (marker, then model headers) only before the first poll.
    per_poll = len(case["blocks"])
    assert len(uart.written) == (len(case["exchanges"]) - per_poll) + 2 * per_poll
    assert node.origins == {case["unit"]: origin}
