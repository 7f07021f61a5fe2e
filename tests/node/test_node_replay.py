"""The RTU master under MicroPython against the very bytes a pymodbus RTU server sent it
on CPython (tests/meter_node/test_rtu_master_pty.py records them in rtu_replay.json):
for every meter model a node reads, the same requests go out and the same registers
come back, which on CPython decode to exactly the values served."""
from node_kit import FakeClock, ReplayUart, load, unhex

from edge.node.rtu import RtuMaster

REPLAY = load("rtu_replay.json")


def test_every_model_gets_the_same_registers_from_the_replayed_bytes():
    assert len(REPLAY) >= 6
    for name in sorted(REPLAY):
        case = REPLAY[name]
        replies = {}
        for request, answer in case["exchanges"]:
            replies[unhex(request)] = unhex(answer)
        clock = FakeClock()
        uart = ReplayUart(clock, replies)
        master = RtuMaster(uart, clock, timeout_ms=500)
        registers = []
        for address, count in case["blocks"]:
            words = master.read(case["unit"], case["fc"], address, count)
            for i in range(count):
                registers.append([address + i, words[i]])
        assert registers == case["registers"], name
        assert [unhex(q) for q, _ in case["exchanges"]] == uart.written, name
