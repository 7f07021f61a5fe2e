"""edge/node/board.py with a stand-in `machine` module (no board here): what it asks of
the hardware, from node_config.json. Runs under pytest and MicroPython."""
import json
import sys

from node_kit import FakeClock


class Recorder:
    calls = []


class FakeUART:
    def __init__(self, uart_id, **kw):
        Recorder.calls.append(("UART", uart_id, kw))

    def any(self):
        return 0

    def read(self, n):
        return None

    def write(self, data):
        return len(data)


class FakePin:
    OUT = 1

    def __init__(self, pin, mode=None, value=None):
        self.pin = pin
        Recorder.calls.append(("Pin", pin, mode, value))

    def value(self, v=None):
        Recorder.calls.append(("value", self.pin, v))


class FakeWDT:
    def __init__(self, timeout):
        Recorder.calls.append(("WDT", timeout))

    def feed(self):
        pass


class FakeMachine:
    UART = FakeUART
    Pin = FakePin
    WDT = FakeWDT

    @staticmethod
    def reset_cause():
        return 3


def _board():
    sys.modules["machine"] = FakeMachine
    try:
        from edge.node import board
    finally:
        sys.modules.pop("machine")
    if not hasattr(board.time, "ticks_ms"):     # CPython's time has no ticks
        board.time = FakeClock()
    return board


CFG = {"node_id": "garage-1", "wifi": None, "broker": {"host": "10.0.0.2", "user": "garage-1", "password": "pw"},
       "uart": {"id": 2, "tx": 17, "rx": 16, "de": 4, "baudrate": 19200, "parity": "E", "stopbits": 1},
       "watchdog_ms": 8000, "led": 5,
       "meters": [{"unit": 1, "model": "eastron_sdm630", "fc": 4, "blocks": [[0, 18]]}]}
PATH = "/tmp/edge_node_board_test.json"


def test_main_sets_up_uart_pins_watchdog_and_runs_the_node():
    board = _board()
    from edge.node import app
    with open(PATH, "w") as f:
        json.dump(CFG, f)
    Recorder.calls = []
    ran = []
    real_run = app.Node.run
    app.Node.run = lambda self, turns=None: ran.append(self)
    try:
        node = board.main(PATH)
    finally:
        app.Node.run = real_run
    assert ran == [node] and node.reset_cause == 3
    calls = Recorder.calls
    assert ("WDT", 8000) in calls
    uart = [c for c in calls if c[0] == "UART"][0]
    assert uart[1] == 2
    kw = uart[2]
    assert kw["baudrate"] == 19200 and kw["parity"] == 0 and kw["stop"] == 1 and kw["bits"] == 8
    assert kw["tx"].pin == 17 and kw["rx"].pin == 16 and kw["timeout"] == 0
    assert ("Pin", 4, FakePin.OUT, 0) in calls      # DE low: the bus is free for the meter
    assert ("Pin", 5, FakePin.OUT, 0) in calls      # the status LED
    assert node.master.de_pin is not None and node.master.char_us == 11000000 // 19200


def test_a_broken_config_file_stops_with_a_message_and_arms_nothing():
    board = _board()
    with open(PATH, "w") as f:
        f.write('{"node_id": "x"')
    Recorder.calls = []
    assert board.main(PATH) is None
    assert Recorder.calls == []
    bad = dict(CFG)
    bad["uart"] = {"id": 2, "parity": "X"}
    with open(PATH, "w") as f:
        json.dump(bad, f)
    assert board.main(PATH) is None
    assert Recorder.calls == []
