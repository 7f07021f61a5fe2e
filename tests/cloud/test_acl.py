"""deploy/mosquitto/acl on a real Mosquitto with a generated password file: a site
reads only its own downstream and writes only its own upstream topics."""
from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest

from host_tools.broker import Broker

from .conftest import REPO

ACL = REPO / "deploy" / "mosquitto" / "acl"
USERS = {"cloud.peer": "cloud-secret", "demo": "demo-secret", "other": "other-secret"}


class Client:
    """A plain MQTT 5 client that records what it receives and the broker's answers."""

    def __init__(self, port, user=None, password=None, client_id=""):
        self.got = []
        self.connected = threading.Event()
        self.connect_reason = None
        self.suback = {}
        self.arrived = threading.Condition()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5)
        if user:
            self.c.username_pw_set(user, password)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.connected.wait(20)

    def _on_connect(self, client, userdata, flags, reason, props):
        self.connect_reason = reason
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        with self.arrived:
            self.got.append((msg.topic, bytes(msg.payload)))
            self.arrived.notify_all()

    def _on_subscribe(self, client, userdata, mid, reasons, props):
        with self.arrived:
            self.suback[mid] = reasons
            self.arrived.notify_all()

    def subscribe(self, topic):
        _, mid = self.c.subscribe(topic, qos=1)
        with self.arrived:
            assert self.arrived.wait_for(lambda: mid in self.suback, 20)
        return self.suback[mid][0]

    def publish(self, topic, payload):
        info = self.c.publish(topic, payload, qos=1)
        info.wait_for_publish(20)
        return info

    def wait_for(self, n):
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.got) >= n, 20), self.got
        return self.got

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def acl_broker(tmp_path):
    with Broker(workdir=str(tmp_path / "b"), users=USERS, acl_file=str(ACL)) as b:
        yield b


def test_a_site_cannot_command_another_site(acl_broker):
    demo = Client(acl_broker.port, "demo", "demo-secret", "edge-demo")
    other = Client(acl_broker.port, "other", "other-secret", "edge-other")
    demo_again = Client(acl_broker.port, "demo", "demo-secret", "edge-demo-2")
    cloud = Client(acl_broker.port, "cloud.peer", "cloud-secret", "cloud")
    try:
        assert not demo.subscribe("evc/demo/down/#").is_failure
        # 'other' has valid credentials, but not demo's: its forged command is dropped
        # (Mosquitto 2.0 also drops the offender's connection).
        other.publish("evc/demo/down/cmd", b"forged")
        # A site cannot write its own downstream topics either.
        demo_again.publish("evc/demo/down/cmd", b"self-made")
        # The cloud's message is published after both; when it arrives, the earlier
        # ones would have arrived before it (one broker, one subscriber, QoS 1).
        cloud.publish("evc/demo/down/cmd", b"from-cloud")
        got = demo.wait_for(1)
        assert got == [("evc/demo/down/cmd", b"from-cloud")]
    finally:
        for c in (demo, other, demo_again, cloud):
            c.close()


def test_a_site_cannot_read_another_site_or_the_cloud_side(acl_broker):
    other = Client(acl_broker.port, "other", "other-secret", "edge-other")
    demo = Client(acl_broker.port, "demo", "demo-secret", "edge-demo")
    cloud = Client(acl_broker.port, "cloud.peer", "cloud-secret", "cloud")
    try:
        # Mosquitto 2.0 grants any subscription and checks the read ACL per message.
        for topic in ("evc/demo/down/#", "evc/demo/up/#", "evc/+/up/#", "#"):
            other.subscribe(topic)
        assert not cloud.subscribe("evc/+/up/#").is_failure
        assert not other.subscribe("evc/other/down/#").is_failure
        demo.publish("evc/demo/up/records", b"demo-record")       # allowed for demo
        cloud.publish("evc/demo/down/cmd", b"for-demo")
        demo.publish("evc/other/up/records", b"spoofed")           # not demo's topic
        # Published last: Mosquitto routes each message before its PUBACK, so anything
        # 'other' was allowed to see would reach it before this one.
        cloud.publish("evc/other/down/ack", b"for-other")
        cloud_got = cloud.wait_for(1)
        assert cloud_got == [("evc/demo/up/records", b"demo-record")]
        other_got = other.wait_for(1)
        # 'other' got only its own downstream message (once per matching subscription),
        # nothing of demo's.
        assert set(other_got) == {("evc/other/down/ack", b"for-other")}
    finally:
        for c in (demo, other, cloud):
            c.close()


def test_unknown_or_anonymous_clients_are_refused(acl_broker):
    for user, password in ((None, None), ("demo", "wrong"), ("intruder", "x")):
        c = Client(acl_broker.port, user, password)
        try:
            assert c.connected.wait(20)
            assert c.connect_reason.is_failure, user
        finally:
            c.close()
