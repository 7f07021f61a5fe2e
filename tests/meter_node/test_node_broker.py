"""The node program and the gateway against a real Mosquitto that refuses, restarts or
is not there: the node says why on its status line and comes back by itself."""
from __future__ import annotations

import asyncio
import time

import pytest

from edge.meters.config import parse_meters
from edge.meters.node_source import NodeBrokerConfig, NodeSource
from edge.meters.poller import MeterPoller
from host_tools import node_flash
from host_tools.boards import load_board
from host_tools.broker import Broker, free_port
from host_tools.node_host import FdUart, build_node
from host_tools.sim_meter import SimMeter

from .node_pty import PtyPair
from .test_node_end_to_end import ACL, USERS, start_node


def node_cfg(port: int, password: str) -> dict:
    return node_flash.node_config(load_board("rp2-pico-w"), node_id="garage-1", meters=[("abb_b23", 2)],
                                  broker_host="127.0.0.1", broker_port=port, password=password)


@pytest.mark.parametrize("case", ["wrong password", "no broker"])
def test_refused_or_absent_broker_is_on_the_status_line_and_retried_later(tmp_path, case):
    pair = PtyPair()
    lines: list[str] = []
    broker = Broker(workdir=str(tmp_path / "b"), users=USERS, acl_file=str(ACL)) if case == "wrong password" else None
    try:
        port = broker.start().port if broker else free_port()
        node = build_node(node_cfg(port, "not-the-password"), FdUart(pair.master_fd), out=lines.append)
        node.step()
        assert node.client is None and node.backoff_ms == 1000
        assert "refused or unreachable" in lines[0], lines
        assert ("MQTTException 5" if broker else "ConnectionRefusedError") in lines[0], lines
        assert node.dropped == 1          # the poll still ran; its reading had nowhere to go
    finally:
        if broker:
            broker.cleanup()
        pair.close()


async def test_node_and_gateway_come_back_after_a_broker_restart(tmp_path):
    pair = PtyPair()
    broker = Broker(workdir=str(tmp_path / "b"), users=USERS, acl_file=str(ACL)).start()
    meter = SimMeter("eastron_sdm630", values={"current_a": [7.0, 7.0, 7.0]}, device_id=1, framer="rtu",
                     serial_port=pair.slave_path)
    await meter.start()
    node = start_node(tmp_path, pair, broker.port)
    meters = parse_meters([{"id": "grid", "model": "eastron_sdm630", "source": "node", "node": "garage-1"}])
    poller = MeterPoller(meters)
    src = NodeSource(NodeBrokerConfig(port=broker.port, password=USERS["edge.gateway"]), meters, poller)
    readings = []
    poller.subscribe(readings.append)
    try:
        await src.start()

        async def grows(n, guard_s=30.0):
            want = len(readings) + n
            deadline = time.monotonic() + guard_s
            while len(readings) < want and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return len(readings) >= want
        assert await grows(3), (tmp_path / "node.log").read_text()
        await asyncio.to_thread(broker.restart)
        restarted = len(readings)
        assert await grows(3, 60), (tmp_path / "node.log").read_text()
        assert readings[-1].current_da == (70, 70, 70) and len(readings) > restarted
        log = (tmp_path / "node.log").read_text()
        assert "connection lost" in log or "refused or unreachable" in log, log
    finally:
        node.kill()
        node.wait(10)
        await src.stop()
        await meter.stop()
        broker.cleanup()
        pair.close()


async def test_edge_validate_probe_waits_for_a_node_reading(tmp_path, capsys):
    import json

    from edge.cli import main as edge_main
    from .test_node_end_to_end import site
    pair = PtyPair()
    broker = Broker(workdir=str(tmp_path / "b"), users=USERS, acl_file=str(ACL)).start()
    meter = SimMeter("eastron_sdm630", values={"current_a": [3.0, 4.0, 5.0]}, device_id=1, framer="rtu",
                     serial_port=pair.slave_path)
    await meter.start()
    d = site(broker.port, str(tmp_path / "e.db"))
    d["ocpp"]["port"] = free_port()
    path = tmp_path / "site.json"
    path.write_text(json.dumps(d))
    node = None
    import logging
    # The probe quiets these loggers for its own run; later tests in this process need them.
    levels = {name: logging.getLogger(name).level for name in ("edge", "pymodbus")}
    try:
        assert await asyncio.to_thread(edge_main, ["validate", "--probe", str(path)]) == 1
        assert "probe meter grid: FAILED: no reading from meter node garage-1" in capsys.readouterr().out
        node = start_node(tmp_path, pair, broker.port)
        log = tmp_path / "node.log"
        for _ in range(600):            # hang guard: the node is up and reading
            if log.exists() and "up | unit 1 ok" in log.read_text():
                break
            await asyncio.sleep(0.05)
        assert await asyncio.to_thread(edge_main, ["validate", "--probe", str(path)]) == 0
        assert "probe meter grid: 0 W, 3/4/5 A per phase" in capsys.readouterr().out
    finally:
        if node is not None:
            node.kill()
            node.wait(10)
        await meter.stop()
        broker.cleanup()
        pair.close()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
