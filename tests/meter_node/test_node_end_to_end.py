"""A meter node end to end, every part real except the board itself:

    pymodbus RTU server (the meter) --pty--> node program (CPython, its own process,
    micropython-lib's umqtt.simple) --MQTT, node's own account--> Mosquitto with
    edge/deploy/mosquitto/nodes.acl --> the edge service (NodeSource -> poller -> allocation)
    --OCPP--> a simulated wallbox

The gateway allocates from the node's readings; another node's account cannot publish
as this node; killing the node sends the site into fail-safe. Waits are hang guards,
not speed assertions.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge import config
from edge.service import EdgeService
from host_tools.broker import Broker
from host_tools.node_host import mqtt_factory
from host_tools import node_flash
from host_tools.boards import load_board
from host_tools.sim_meter import SimMeter
from host_tools.wallbox_sim.fleet import Fleet
from host_tools.wallbox_sim.model import ConnectorSpec, StationSpec
from edge.node import messages
from edge.node.msgpack_encode import pack

from .node_pty import PtyPair

REPO = Path(__file__).resolve().parents[2]
ACL = REPO / "edge" / "deploy" / "mosquitto" / "nodes.acl"
USERS = {"edge.gateway": "gateway-secret", "garage-1": "node-one-secret", "garage-2": "node-two-secret"}
OCPP_PASSWORD = "node-e2e-test-password"
MAX_AGE_S = 2


def site(broker_port: int, store: str) -> dict:
    return {
        "site": {"site_id": "nodesite", "timezone": "UTC0", "offline_unknown_tokens": "accept",
                 "grid": {"max_current_a": 40, "safety_margin_a": 1},
                 "charging_groups": [{"id": "g", "name": "G", "stations": [
                     {"id": "CP1", "connectors": [{"id": 1, "phases": 3, "wiring": "L1L2L3",
                                                   "min_current_a": 6, "max_current_a": 16}]}]}]},
        # Fail-safe assumes 30 A of building load: 40 - 1 - 30 = 9 A left for the car.
        "load_management": {"meter_max_age_s": MAX_AGE_S, "failsafe_non_ev_a": 30, "raise_holdoff_s": 1},
        "meters": [{"id": "grid", "model": "eastron_sdm630", "source": "node", "node": "garage-1",
                    "device_id": 1, "stale_after_s": MAX_AGE_S}],
        "nodes": {"host": "127.0.0.1", "port": broker_port, "username": "edge.gateway",
                  "password": USERS["edge.gateway"]},
        "ocpp": {"host": "127.0.0.1", "port": 0, "stations": {"CP1": {"password": OCPP_PASSWORD}}},
        "store": {"path": store},
        "control": {"interval_s": 0.5},
    }


@pytest.fixture
def broker(tmp_path):
    with Broker(workdir=str(tmp_path / "b"), users=USERS, acl_file=str(ACL)) as b:
        yield b


@pytest.fixture
def pty():
    pair = PtyPair()
    yield pair
    pair.close()


def start_node(tmp_path: Path, pty: PtyPair, broker_port: int) -> subprocess.Popen:
    # The configuration `edge flash` would put on an ESP32, pointed at this broker.
    cfg = node_flash.node_config(load_board("esp32-devkitc"), node_id="garage-1",
                                 meters=[("eastron_sdm630", 1)], broker_host="127.0.0.1",
                                 broker_port=broker_port, password=USERS["garage-1"], interval_ms=300)
    path, _ = node_flash.write_files(cfg, tmp_path / "node")
    log = open(tmp_path / "node.log", "w")
    return subprocess.Popen([sys.executable, "-m", "host_tools.node_host", "--config", str(path),
                             "--serial-fd", str(pty.master_fd)], pass_fds=(pty.master_fd,),
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


async def test_node_feeds_the_allocation_and_its_loss_means_failsafe(broker, pty, tmp_path, until):
    meter = SimMeter("eastron_sdm630", values={"current_a": [5.0, 5.0, 5.0], "voltage_v": [230.0] * 3},
                     device_id=1, framer="rtu", serial_port=pty.slave_path)
    await meter.start()
    node = start_node(tmp_path, pty, broker.port)
    svc = EdgeService(config.from_dict(site(broker.port, str(tmp_path / "e.db"))))
    readings = []
    fleet = None
    try:
        await svc.start()
        svc.poller.subscribe(readings.append)
        fleet = Fleet("ws://127.0.0.1:%d" % svc.ocpp_port,
                      [StationSpec(id="CP1", version="2.0.1", password=OCPP_PASSWORD,
                                   connectors=[ConnectorSpec(3, 16)], response_delay_s=0.1)])
        await fleet.start()
        await fleet.wait_connected()
        assert await until(lambda: svc.last is not None and svc.last.status["mode"] == "normal", 30), \
            (svc.last and svc.last.status, (tmp_path / "node.log").read_text())
        assert readings[-1].current_da == (50, 50, 50) and readings[-1].model == "eastron_sdm630"
        key = ("CP1", 1)
        assert await fleet.plug_in("CP1", 1, "ANY-TOKEN", 50000, 16)
        assert await until(lambda: svc.last.limits.get(key, (0,))[0] == 160), svc.last.status

        # The building's load rises at the meter: the node's readings lower the car's limit.
        meter.set_values(current_a=[45.0, 45.0, 45.0])
        assert await until(lambda: svc.last.limits.get(key, (160,))[0] < 160, 20), svc.last.status
        assert svc.last.status["mode"] == "normal"
        # the node's readings wake the control step on arrival, as a polled meter's do
        assert svc.trigger.reasons["reading"] > 0, svc.trigger.reasons

        # Another node's account publishes a reading as garage-1: the broker refuses it.
        forged = mqtt_factory("garage-2", "127.0.0.1", broker.port, "garage-2", USERS["garage-2"], 30)
        forged.connect()
        body = messages.reading("garage-1", 10 ** 6, 1, "eastron_sdm630", 0, 1,
                                [[0, [0] * 18], [52, [0, 0]], [72, [0] * 4]])
        forged.publish(messages.reading_topic("garage-1"), pack(body))
        seen = len(readings)
        assert await until(lambda: len(readings) >= seen + 3)   # the real node's, after it
        assert all(r.current_da != (0, 0, 0) for r in readings)
        assert svc.node_source.status()["garage-1"]["refused"] == 0      # never even delivered
        forged.sock.close()

        # The node stops (power cut): its meter goes stale, the site goes fail-safe.
        node.send_signal(signal.SIGKILL)
        node.wait(10)
        killed = time.monotonic()
        assert await until(lambda: svc.last.status["mode"] == "failsafe", 20), svc.last.status
        took = time.monotonic() - killed
        assert svc.last.status["reason"] in ("meter_stale", "meter_missing")
        # The fail-safe budget (9 A), reached after the raise hold-off from the lower limit.
        assert await until(lambda: svc.last.limits[key][0] == 90, 20), svc.last.limits
        print("node killed -> fail-safe after %.2f s (meter_max_age_s %d, control interval 0.5 s)"
              % (took, MAX_AGE_S))
    finally:
        if node.poll() is None:
            node.kill()
            node.wait(10)
        if fleet is not None:
            await fleet.stop()
        await svc.stop()
        await meter.stop()


def test_a_node_cannot_publish_as_another_node(broker):
    """The ACL alone, with micropython-lib's own client: garage-2 may write its own topic,
    not garage-1's; Mosquitto 2.0 drops the connection of a client whose publish it denies."""
    import paho.mqtt.client as mqtt

    got = []
    gw = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gw")
    gw.username_pw_set("edge.gateway", USERS["edge.gateway"])
    gw.on_message = lambda c, u, m: got.append(m.topic)
    subscribed = []
    gw.on_subscribe = lambda *a: subscribed.append(1)
    gw.connect("127.0.0.1", broker.port)
    gw.subscribe("nodes/#", qos=1)
    gw.loop_start()
    try:
        deadline = time.monotonic() + 20
        while not subscribed and time.monotonic() < deadline:
            time.sleep(0.02)
        two = mqtt_factory("garage-2", "127.0.0.1", broker.port, "garage-2", USERS["garage-2"], 30)
        two.connect()
        two.publish("nodes/garage-2/reading", b"own")
        two.publish("nodes/garage-1/reading", b"forged")
        # The broker closes garage-2's connection after the denied publish.
        lost = False
        for _ in range(50):
            try:
                two.publish("nodes/garage-2/reading", b"after")
                two.ping()
            except OSError:
                lost = True
                break
            time.sleep(0.05)
        one = mqtt_factory("garage-1", "127.0.0.1", broker.port, "garage-1", USERS["garage-1"], 30)
        one.connect()
        one.publish("nodes/garage-1/reading", b"real")
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got[:2] == ["nodes/garage-2/reading", "nodes/garage-1/reading"]
        assert lost
        assert "nodes/garage-1/reading" not in got[:1]
        one.sock.close()
    finally:
        gw.loop_stop()
        gw.disconnect()
