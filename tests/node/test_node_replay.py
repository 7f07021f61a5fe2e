"""The RTU master under MicroPython against the very bytes a pymodbus RTU server sent it
on CPython (tests/meter_node/test_rtu_master_pty.py records them in rtu_replay.json):
for every meter model, the same requests go out (SunSpec discovery included) and the
same registers come back, which on CPython decode to exactly the values served."""
from node_kit import FakeClock, ReplayUart, load, unhex

from edge.node.rtu import RtuMaster
from edge.node.sunspec import find_model

REPLAY = load("rtu_replay.json")


def test_every_model_gets_the_same_registers_from_the_replayed_bytes():
    assert len(REPLAY) >= 7 and REPLAY["sunspec_meter"]["origin"] > 40000
    for name in sorted(REPLAY):
        case = REPLAY[name]
        replies = {}
        for request, answer in case["exchanges"]:
            replies[unhex(request)] = unhex(answer)
        clock = FakeClock()
        uart = ReplayUart(clock, replies)
        master = RtuMaster(uart, clock, timeout_ms=500)
        origin = 0
        spec = case["sunspec"]
        if spec:
            origin = find_model(lambda a, c: master.read(case["unit"], case["fc"], a, c),
                                spec["bases"], spec["ids"], spec["length"])
        assert origin == case["origin"], name
        registers = []
        for address, count in case["blocks"]:
            words = master.read(case["unit"], case["fc"], origin + address, count)
            for i in range(count):
                registers.append([origin + address + i, words[i]])
        assert registers == case["registers"], name
        assert [unhex(q) for q, _ in case["exchanges"]] == uart.written, name
