"""The gateway's side of a meter node: messages checked, registers decoded by the same
decoder as a polled meter, staleness from the arrival time, bad messages dropped and
logged once. Messages are handed to NodeSource.handle directly; test_node_end_to_end.py
runs the same path through Mosquitto."""
from __future__ import annotations

import logging

import msgpack
import pytest

from edge.core.errors import ValidationError
from edge.meters.config import MeterConfig, parse_meters
from edge.meters.model import load_model
from edge.meters.node_source import NodeBrokerConfig, NodeSource, parse_reading, NodeMessageError
from edge.meters.poller import MeterPoller
from edge.meters import codec
from edge.node import messages
from edge.node.msgpack_encode import pack

MODEL = load_model("eastron_sdm630")


def words_for(currents=(16.2, 12.5, 8.0)) -> list:
    regs = {a: 0 for b in MODEL.read_blocks(0) for a in range(b[0], b[0] + b[1])}
    for i, a in enumerate(currents):
        w = codec.encode(a, "float32", "big")
        regs[6 + 2 * i], regs[7 + 2 * i] = w
    for i in range(3):
        regs[2 * i], regs[2 * i + 1] = codec.encode(230.0, "float32", "big")
    return [[addr, [regs[a] for a in range(addr, addr + n)]] for addr, n in MODEL.read_blocks(0)]


def reading_msg(seq=0, unit=1, node="garage-1", age_ms=0, blocks=None, model="eastron_sdm630") -> bytes:
    return pack(messages.reading(node, seq, unit, model, age_ms, 40, blocks or words_for()))


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def setup():
    meters = parse_meters([{"id": "grid", "model": "eastron_sdm630", "source": "node", "node": "garage-1",
                            "device_id": 1, "stale_after_s": 3}])
    clock = Clock()
    poller = MeterPoller(meters, clock=clock)
    src = NodeSource(NodeBrokerConfig(), meters, poller, clock=clock)
    return src, poller, clock


TOPIC = "nodes/garage-1/reading"


def test_a_node_reading_decodes_like_a_polled_meter_and_is_dated_by_arrival(setup):
    src, poller, clock = setup
    src.handle(TOPIC, reading_msg(age_ms=250), 1000.0)
    r = poller.latest("grid")
    assert r.current_da == (162, 125, 80) and r.voltage_dv == (2300, 2300, 2300)
    assert r.at_s == pytest.approx(999.75)
    assert not poller.is_stale("grid", now_s=1002.0)
    assert poller.is_stale("grid", now_s=1003.0)       # stale_after_s = 3, from the read


def test_node_reported_failure_counts_as_a_failed_poll_and_is_logged_once(setup, caplog):
    src, poller, _ = setup
    src.handle(TOPIC, reading_msg(), 1000.0)
    fail = pack(messages.failure("garage-1", 1, 1, "eastron_sdm630", 0, "timeout", "no answer within 500 ms"))
    with caplog.at_level(logging.WARNING):
        src.handle(TOPIC, fail, 1001.0)
        src.handle(TOPIC, pack(messages.failure("garage-1", 2, 1, "eastron_sdm630", 0, "timeout", "x")), 1002.0)
    st = poller.status("grid")
    assert st["consecutive_failures"] == 2 and st["last_error"] == "node garage-1 reports: x"
    warned = [r.getMessage() for r in caplog.records if "meter grid" in r.getMessage()]
    assert len(warned) == 1 and "node garage-1 reports: no answer within 500 ms" in warned[0]


@pytest.mark.parametrize("topic, payload, kind", [
    ("nodes/garage-1/reading", b"\xc1", "format"),
    ("nodes/garage-1/reading", reading_msg(node="other"), "node"),
    ("nodes/garage-1/reading", reading_msg(unit=9), "unit"),
    ("nodes/garage-1/reading", reading_msg(model="abb_b23"), "model"),
    ("nodes/garage-1/reading", reading_msg(blocks=[[0, [1, 2]]]), "plan"),
    ("nodes/garage-1/reading", pack({"v": 2, "node": "garage-1"}), "version"),
    ("nodes/garage-1/reading", pack({"v": 1, "node": "garage-1", "seq": -1, "unit": 1, "age_ms": 0,
                                     "model": "m", "blocks": []}), "format"),
    ("nodes/garage-1/reading", pack({"v": 1, "node": "garage-1", "seq": 1, "unit": 1, "age_ms": 0,
                                     "model": "eastron_sdm630", "blocks": [[0, [70000]]]}), "format"),
    ("nodes/garage-1/reading", b"\x00" * 5000, "size"),
])
def test_messages_a_node_does_not_send_are_dropped(setup, caplog, topic, payload, kind):
    src, poller, _ = setup
    with caplog.at_level(logging.WARNING):
        src.handle(topic, payload, 1000.0)
        src.handle(topic, payload, 1001.0)
    assert poller.latest("grid") is None
    assert src.status()["garage-1"]["refused"] == 2
    dropped = [r for r in caplog.records if "message dropped" in r.getMessage()]
    assert len(dropped) == 1                     # once per kind, not per message


def test_parse_reading_names_the_kind():
    with pytest.raises(NodeMessageError) as err:
        parse_reading("nodes/Bad+/reading", reading_msg())
    assert err.value.kind == "topic"


def test_a_duplicate_or_overtaken_message_does_not_move_the_reading(setup):
    src, poller, _ = setup
    src.handle(TOPIC, reading_msg(seq=5), 1000.0)
    src.handle(TOPIC, reading_msg(seq=5, blocks=words_for((1.0, 1.0, 1.0))), 1000.5)
    assert poller.latest("grid").current_da == (162, 125, 80)
    src.handle(TOPIC, reading_msg(seq=6, age_ms=5000, blocks=words_for((2.0, 2.0, 2.0))), 1001.0)
    assert poller.latest("grid").at_s == 1000.0      # older than what is kept


def test_meter_config_for_a_node_refuses_bus_settings():
    with pytest.raises(ValidationError) as err:
        MeterConfig.from_dict({"id": "g", "model": "eastron_sdm630", "source": "node", "node": "n1",
                               "host": "10.0.0.1"}, "meters[0]")
    assert err.value.field == "meters[0].host"
    with pytest.raises(ValidationError) as err:
        MeterConfig.from_dict({"id": "g", "model": "eastron_sdm630", "source": "node", "node": "N 1"}, "m")
    assert err.value.field == "m.node"
    with pytest.raises(ValidationError):
        parse_meters([{"id": "a", "model": "eastron_sdm630", "source": "node", "node": "n1"},
                      {"id": "b", "model": "abb_b23", "source": "node", "node": "n1"}])


def test_node_broker_section_is_checked():
    assert NodeBrokerConfig.from_dict({"host": "10.0.0.2", "password": "pw"}).username == "edge.gateway"
    with pytest.raises(ValidationError) as err:
        NodeBrokerConfig.from_dict({"port": 0})
    assert err.value.field == "nodes.port"


def test_edge_validate_names_the_node_of_a_node_meter(tmp_path, capsys):
    import json
    from edge.cli import main as edge_main
    site = {"site": {"site_id": "s", "timezone": "UTC0", "grid": {"max_current_a": 40},
                     "charging_groups": [{"id": "g", "name": "G", "stations": [
                         {"id": "CP1", "connectors": [{"id": 1, "phases": 3, "wiring": "L1L2L3",
                                                       "min_current_a": 6, "max_current_a": 16}]}]}]},
            "meters": [{"id": "grid", "model": "abb_b23", "source": "node", "node": "garage-1", "device_id": 3}],
            "nodes": {"host": "127.0.0.1", "password": "pw"}}
    path = tmp_path / "site.json"
    path.write_text(json.dumps(site))
    assert edge_main(["validate", str(path)]) == 0
    assert "meter grid: abb_b23 read by meter node garage-1, device 3" in capsys.readouterr().out
    del site["nodes"]
    path.write_text(json.dumps(site))
    assert edge_main(["validate", str(path)]) == 2
    assert "meters[0].source" in capsys.readouterr().err


def test_a_sunspec_reading_is_decoded_from_the_origin_the_node_found():
    import json
    from pathlib import Path
    case = json.loads((Path(__file__).parents[1] / "node" / "rtu_replay.json").read_text())["sunspec_meter"]
    regs = dict(map(tuple, case["registers"]))
    origin = case["origin"]
    blocks = [[origin + a, [regs[origin + a + i] for i in range(c)]] for a, c in case["blocks"]]
    meters = parse_meters([{"id": "pv", "model": "sunspec_meter", "source": "node", "node": "garage-1",
                            "device_id": case["unit"]}])
    poller = MeterPoller(meters, clock=Clock())
    src = NodeSource(NodeBrokerConfig(), meters, poller)
    msg = messages.reading("garage-1", 0, case["unit"], "sunspec_meter", 0, 30, blocks)
    src.handle(TOPIC, pack(msg), 1000.0)               # no origin: refused
    assert poller.latest("pv") is None and src.status()["garage-1"]["refused"] == 1
    msg["origin"] = origin
    src.handle(TOPIC, pack(msg), 1000.0)
    r = poller.latest("pv")
    assert r.current_da == (162, 125, 80) and r.voltage_dv == (2301, 2298, 2314)
    assert r.import_wh == 1234500
