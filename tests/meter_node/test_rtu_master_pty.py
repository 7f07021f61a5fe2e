"""The node's RTU master (CPython, the same module a board runs) against a real pymodbus
RTU server on a pseudo-terminal, for every meter model a node can read: the registers
it returns decode, with the gateway's decoder, to exactly the values served.

The bytes exchanged are the ones tests/node/rtu_replay.json holds for the MicroPython
run (tests/node/test_node_replay.py); NODE_REPLAY_WRITE=1 rewrites that file."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from edge.meters.decoder import decode_reading
from edge.meters.model import available_models, load_model
from edge.node.rtu import RtuExceptionReply, RtuMaster
from edge.node.sunspec import find_model
from host_tools.node_host import HostClock
from host_tools.sim_meter import SimMeter

from .node_pty import PtyPair, RecordingUart

REPLAY = Path(__file__).resolve().parents[1] / "node" / "rtu_replay.json"
NODE_MODELS = available_models()
VALUES = {"voltage_v": [230.1, 229.8, 231.4], "current_a": [16.2, 12.5, 8.0],
          "phase_power_w": [3700, 2875, -1840], "power_w": 4735, "import_wh": 1234500,
          "export_wh": 67800}
EXPECTED = {"voltage_dv": (2301, 2298, 2314), "current_da": (162, 125, 80),
            "phase_power_w": (3700, 2875, -1840), "power_w": 4735, "import_wh": 1234500,
            "export_wh": 67800}


@pytest.fixture
def pty():
    pair = PtyPair()
    yield pair
    pair.close()


async def _serve(model: str, pty: PtyPair, unit: int) -> SimMeter:
    sim = SimMeter(model, values=VALUES, device_id=unit, framer="rtu", serial_port=pty.slave_path)
    await sim.start()
    return sim


def _read_all(master: RtuMaster, unit: int, model) -> tuple[int, dict[int, int]]:
    """As the node reads: a SunSpec model is found first (edge/node/sunspec.py)."""
    fc = model.function_code
    origin = 0
    if model.sunspec:
        spec = model.sunspec
        origin = find_model(lambda a, c: master.read(unit, fc, a, c), list(spec["base_addresses"]),
                            sorted(spec["model_ids"]), spec["model_length"])
    registers = {}
    for address, count in model.read_blocks(origin):
        words = master.read(unit, fc, address, count)
        registers.update(zip(range(address, address + count), words))
    return origin, registers


async def test_every_node_model_reads_exactly_through_a_pty():
    assert len(NODE_MODELS) >= 7 and "sunspec_meter" in NODE_MODELS
    replay = {}
    for i, name in enumerate(NODE_MODELS):
        pair = PtyPair()
        unit = 1 + i * 17
        sim = await _serve(name, pair, unit)
        try:
            model = load_model(name)
            uart = RecordingUart(pair.master_fd)
            master = RtuMaster(uart, HostClock, timeout_ms=1000)
            origin, registers = await asyncio.to_thread(_read_all, master, unit, model)
        finally:
            await sim.stop()
            pair.close()
        assert origin == sim.origin, name
        reading = decode_reading(model, registers, meter_id="m", at_s=0, origin=origin)
        got = {k: getattr(reading, k) for k in EXPECTED}
        assert got == EXPECTED, name
        spec = model.sunspec
        replay[name] = {"unit": unit, "fc": model.function_code, "origin": origin,
                        "sunspec": spec and {"bases": list(spec["base_addresses"]),
                                             "ids": sorted(spec["model_ids"]), "length": spec["model_length"]},
                        "blocks": [list(b) for b in model.read_blocks(0)],
                        "exchanges": [[q.hex(), a.hex()] for q, a in uart.exchanges],
                        "registers": [[a, registers[a]] for a in sorted(registers)]}
    if os.environ.get("NODE_REPLAY_WRITE"):
        REPLAY.write_text(json.dumps(replay, indent=1, sort_keys=True) + "\n")
    assert json.loads(REPLAY.read_text()) == replay


async def test_exception_reply_from_pymodbus_is_an_exception_with_its_code(pty):
    sim = await _serve("eastron_sdm630", pty, 1)
    try:
        master = RtuMaster(RecordingUart(pty.master_fd), HostClock, timeout_ms=1000)
        # Address 200 is not served by the model: the server answers illegal data address.
        with pytest.raises(RtuExceptionReply) as err:
            await asyncio.to_thread(master.read, 1, 4, 200, 2)
    finally:
        await sim.stop()
    assert err.value.code == 2
    assert "illegal data address" in str(err.value)
