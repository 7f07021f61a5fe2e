"""deploy/mosquitto/acl on a real Mosquitto with a generated password file: a site
reads only its own downstream and writes only its own upstream topics."""
from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest

from host_tools.broker import Broker

from .conftest import REPO

ACL = REPO / "edge" / "deploy" / "mosquitto" / "acl"
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
                             protocol=mqtt.MQTTv5, reconnect_on_failure=False)
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


async def test_cloud_link_works_within_its_acl(acl_broker, tmp_path):
    """The whole edge protocol runs under the ACL: Mosquitto 2.0 drops a client whose
    publish is denied, so a wrong topic anywhere would show as a lost connection."""

    from host_tools.cloud_peer import CloudPeer

    from .conftest import eventually
    from .edge_harness import Edge
    from .samples import SITE_ID, snapshot

    peer = CloudPeer(port=acl_broker.port, username="cloud.peer", password="cloud-secret").start()
    edge = Edge(str(tmp_path / "edge.db"), acl_broker.port, username="demo",
                password="demo-secret")
    await edge.start()
    try:
        await eventually(lambda: peer.snapshot_requests, "snapshot request through the ACL")
        peer.push_snapshot(SITE_ID, snapshot(1))
        await eventually(lambda: edge.holder.version == 1, "snapshot through the ACL")
        rid = edge.enqueue_session(1, "started")
        edge.link.publish_status([])
        edge.link.publish_telemetry({"state": "normal"})
        peer.remote_start(SITE_ID, "rs-1", "CP001", 1, "pi_1")
        await eventually(lambda: edge.outbox.count() == 0 and peer.replies and peer.telemetry,
                         "records acked, reply and telemetry through the ACL")
        assert rid in peer.records[SITE_ID]
        assert edge.link.connection.connects == 1          # never dropped by the broker
        await edge.link.stop()
        await eventually(lambda: peer.online[SITE_ID]["online"] is False, "offline")
    finally:
        await edge.stop()
        peer.stop()


def test_the_example_broker_config_runs_with_site_certificates(tmp_path):
    """deploy/mosquitto/mosquitto.conf as shipped (paths and port swapped for test
    ones): TLS with client certificates whose CN is the site id, plus the ACL."""
    from .tls_certs import make_ca, make_cert
    from host_tools.broker import find_mosquitto, free_port
    import os
    import pwd
    import socket
    import ssl
    import subprocess
    import time

    d = tmp_path
    ca = make_ca(d, "site-ca")
    server = make_cert(d, ca, "broker", "localhost", server=True)
    demo = make_cert(d, ca, "demo", "demo")
    other = make_cert(d, ca, "other", "other")
    cloud = make_cert(d, ca, "cloud", "cloud.peer")
    port = free_port()
    conf = (REPO / "edge" / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    swaps = {
        "/var/lib/mosquitto/": str(d) + "/",
        "/etc/mosquitto/evc.acl": str(ACL),
        "/etc/mosquitto/certs/site-ca.crt": str(ca[0]),
        "/etc/mosquitto/certs/broker.crt": str(server[0]),
        "/etc/mosquitto/certs/broker.key": str(server[1]),
        "listener 8883\n": "listener %d 127.0.0.1\n" % port,
    }
    for old, new in swaps.items():
        assert old in conf, old
        conf = conf.replace(old, new)
    if os.geteuid() == 0:
        conf += "user %s\n" % pwd.getpwuid(0).pw_name
    (d / "evc.conf").write_text(conf)
    proc = subprocess.Popen([find_mosquitto(), "-c", str(d / "evc.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(500):
            assert proc.poll() is None, proc.stderr.read()
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.02)

        def tls_client(cert, client_id):
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                            protocol=mqtt.MQTTv5)
            c.tls_set(ca_certs=str(ca[0]), certfile=str(cert[0]), keyfile=str(cert[1]))
            box = Client.__new__(Client)
            box.got, box.suback = [], {}
            box.connected = threading.Event()
            box.arrived = threading.Condition()
            box.c = c
            c.on_connect, c.on_message = box._on_connect, box._on_message
            c.on_subscribe = box._on_subscribe
            c.connect("127.0.0.1", port)
            c.loop_start()
            assert box.connected.wait(20) and not box.connect_reason.is_failure
            return box

        site = tls_client(demo, "edge-demo")
        forger = tls_client(other, "edge-other")
        cloud_c = tls_client(cloud, "cloud")
        try:
            assert not site.subscribe("evc/demo/down/#").is_failure
            forger.publish("evc/demo/down/cmd", b"forged")
            cloud_c.publish("evc/demo/down/cmd", b"from-cloud")
            assert site.wait_for(1) == [("evc/demo/down/cmd", b"from-cloud")]
        finally:
            for c in (site, forger, cloud_c):
                c.close()
        # Without a client certificate no MQTT session comes about: the broker ends
        # the TLS connection instead of answering CONNECT with a CONNACK.
        ctx = ssl.create_default_context(cafile=str(ca[0]))
        answer = b""
        try:
            with socket.create_connection(("127.0.0.1", port), 10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
                    answer = tls.recv(4)
        except (ssl.SSLError, ConnectionError):
            pass
        assert answer == b""
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()
