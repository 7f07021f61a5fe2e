"""MqttConnection against a real Mosquitto: persistent session, reconnect, MQTT 3.1.1
fallback, TLS client certificates, refused credentials, hostile handler."""
from __future__ import annotations

import asyncio

import paho.mqtt.client as mqtt
import pytest

from edge.cloud.mqtt_config import LinkConfig, TlsConfig
from edge.cloud.mqtt_connection import MqttConnection
from edge.core.errors import ValidationError
from host_tools.broker import Broker, TlsFiles

from .conftest import eventually
from .downgrade_proxy import DowngradeProxy
from .tls_certs import make_ca, make_cert

SUB = "evc/demo/down/#"
WILL = ("evc/demo/up/online", b"gone")


class Probe:
    """Records what an MqttConnection hands to its owner."""

    def __init__(self, cfg: LinkConfig, client_id: str = "edge-demo", fail_on: bytes = None):
        self.ups, self.downs, self.got = [], 0, []
        self.fail_on = fail_on
        self.conn = MqttConnection(cfg, client_id, SUB, lambda: WILL, self.ups.append,
                                   self._down, self._msg, rng=lambda: 0.5)

    def _down(self):
        self.downs += 1

    def _msg(self, topic, payload):
        if payload == self.fail_on:
            raise RuntimeError("handler bug")
        self.got.append((topic, payload))


def fast(port, **kw):
    return LinkConfig(port=port, backoff_base_s=0.02, backoff_cap_s=0.1, **kw)


def publish_once(port, topic, payload, **login):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if login:
        c.username_pw_set(login["user"], login["password"])
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, payload, qos=1).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


async def test_session_survives_offline_time_and_broker_restart(broker):
    p = Probe(fast(broker.port))
    p.conn.start()
    await eventually(lambda: p.conn.connected, "first connect")
    assert p.ups == [False]
    await p.conn.stop()
    # Offline: the broker keeps the subscription and queues for the kept session.
    await asyncio.to_thread(publish_once, broker.port, "evc/demo/down/cmd", b"while-offline")
    p2 = Probe(fast(broker.port))
    p2.conn.start()
    await eventually(lambda: p2.got, "queued message delivered after reconnect")
    assert p2.got == [("evc/demo/down/cmd", b"while-offline")]
    assert p2.ups == [True]                 # session present
    broker.stop()
    await eventually(lambda: not p2.conn.connected, "loss noticed")
    assert p2.downs == 1
    broker.start()
    await eventually(lambda: p2.conn.connects == 2, "reconnect after broker restart")
    await asyncio.to_thread(publish_once, broker.port, "evc/demo/down/ack", b"after-restart")
    await eventually(lambda: len(p2.got) == 2, "message after restart")
    await p2.conn.stop()
    assert not p2.conn.connected


async def test_a_failing_handler_does_not_stop_the_link(broker):
    p = Probe(fast(broker.port), fail_on=b"boom")
    p.conn.start()
    await eventually(lambda: p.conn.connected, "connect")
    await asyncio.to_thread(publish_once, broker.port, "evc/demo/down/cmd", b"boom")
    await asyncio.to_thread(publish_once, broker.port, "evc/demo/down/cmd", b"next")
    await eventually(lambda: p.got, "message after the failing one")
    assert p.got == [("evc/demo/down/cmd", b"next")]
    assert p.conn.connected
    await p.conn.stop()


async def test_falls_back_to_mqtt_311_when_the_broker_refuses_5(broker):
    proxy = await DowngradeProxy(broker.port).start()
    try:
        p = Probe(fast(proxy.port))
        p.conn.start()
        await eventually(lambda: p.conn.connected, "connect through the 3.1.1-only proxy")
        assert proxy.refused_v5 == 1
        assert p.conn.protocol == mqtt.MQTTv311
        await asyncio.to_thread(publish_once, broker.port, "evc/demo/down/cmd", b"v311")
        await eventually(lambda: p.got, "message over 3.1.1")
        await p.conn.stop()
        # Persistent session under 3.1.1 too (clean_session=False).
        await asyncio.to_thread(publish_once, broker.port, "evc/demo/down/cmd", b"queued")
        p2 = Probe(fast(proxy.port))
        p2.conn.start()
        await eventually(lambda: p2.got, "queued message over 3.1.1")
        assert p2.got == [("evc/demo/down/cmd", b"queued")]
        await p2.conn.stop()
    finally:
        await proxy.stop()


async def test_pinned_mqtt5_does_not_fall_back(broker):
    proxy = await DowngradeProxy(broker.port).start()
    try:
        p = Probe(fast(proxy.port, protocol="5"))
        p.conn.start()
        await eventually(lambda: proxy.refused_v5 >= 2, "retries with MQTT 5")
        assert not p.conn.connected
        assert p.conn.protocol == mqtt.MQTTv5
        assert "protocol" in p.conn.last_error.lower()
        await p.conn.stop()
    finally:
        await proxy.stop()


async def test_wrong_password_is_refused_and_retried_with_backoff(tmp_path):
    with Broker(workdir=str(tmp_path / "b"), users={"demo": "right"}) as b:
        p = Probe(fast(b.port, username="demo", password="wrong"))
        p.conn.start()
        await eventually(lambda: p.conn.backoff.attempts >= 3, "several attempts")
        assert not p.conn.connected and p.ups == []
        assert "authori" in p.conn.last_error.lower()
        await p.conn.stop()
        ok = Probe(fast(b.port, username="demo", password="right"))
        ok.conn.start()
        await eventually(lambda: ok.conn.connected, "connect with the right password")
        await ok.conn.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "site-ca")
    rogue_ca = make_ca(d, "rogue-ca")
    return {
        "ca": ca,
        "server": make_cert(d, ca, "server", "localhost", server=True),
        "client": make_cert(d, ca, "client", "demo"),
        "rogue": make_cert(d, rogue_ca, "rogue", "demo"),
    }


async def test_tls_with_client_certificate(tmp_path, pki):
    tls = TlsFiles(cafile=str(pki["ca"][0]), certfile=str(pki["server"][0]),
                   keyfile=str(pki["server"][1]))
    with Broker(workdir=str(tmp_path / "b"), tls=tls) as b:
        good = Probe(fast(b.tls_port, tls=TlsConfig(ca_file=str(pki["ca"][0]),
                                                    cert_file=str(pki["client"][0]),
                                                    key_file=str(pki["client"][1]))))
        good.conn.start()
        await eventually(lambda: good.conn.connected, "TLS connect with a site certificate")
        await asyncio.to_thread(publish_once, b.port, "evc/demo/down/cmd", b"over-tls")
        await eventually(lambda: good.got, "message over TLS")
        await good.conn.stop()

        for name, cert in (("no certificate", None), ("rogue CA", pki["rogue"])):
            bad = Probe(fast(b.tls_port, tls=TlsConfig(
                ca_file=str(pki["ca"][0]),
                cert_file=str(cert[0]) if cert else None,
                key_file=str(cert[1]) if cert else None)), client_id="edge-bad")
            bad.conn.start()
            await eventually(lambda: bad.conn.backoff.attempts >= 2, "refused: " + name)
            assert not bad.conn.connected and bad.ups == [], name
            await bad.conn.stop()


async def test_tls_refuses_a_broker_with_an_unknown_ca(tmp_path, pki):
    tls = TlsFiles(cafile=str(pki["ca"][0]), certfile=str(pki["server"][0]),
                   keyfile=str(pki["server"][1]))
    with Broker(workdir=str(tmp_path / "b"), tls=tls) as b:
        p = Probe(fast(b.tls_port, tls=TlsConfig(ca_file=str(pki["rogue"][0]),
                                                 cert_file=str(pki["client"][0]),
                                                 key_file=str(pki["client"][1]))))
        p.conn.start()
        await eventually(lambda: p.conn.last_error is not None, "certificate check fails")
        assert "certificate" in p.conn.last_error.lower()
        assert not p.conn.connected
        await p.conn.stop()


def test_config_from_dict_validates_every_field():
    cfg = LinkConfig.from_dict({"host": "mqtt.example", "port": 8883, "username": "demo",
                                "password": "x", "tls": {"ca_file": "/ca.pem"}})
    assert cfg.port == 8883 and cfg.tls.ca_file == "/ca.pem"
    bad = [
        ({"port": "1883"}, "cloud.port"),
        ({"port": 0}, "cloud.port"),
        ({"protocol": "4"}, "cloud.protocol"),
        ({"hots": "x"}, "cloud.hots"),
        ({"keepalive_s": 1}, "cloud.keepalive_s"),
        ({"password": "x"}, "cloud.password"),
        ({"tls": {"cert_file": "/c.pem"}}, "cloud.tls.key_file"),
        ({"tls": {"ca": "/c.pem"}}, "cloud.tls.ca"),
        ({"backoff_base_s": 5, "backoff_cap_s": 1}, "cloud.backoff_cap_s"),
        ({"drain_poll_s": True}, "cloud.drain_poll_s"),
        ({"online_auth": 1}, "cloud.online_auth"),
        ({"auth_deadline_s": 0}, "cloud.auth_deadline_s"),
        ({"auth_deadline_s": 60}, "cloud.auth_deadline_s"),
        ({"auth_max_in_flight": 0}, "cloud.auth_max_in_flight"),
        ({"auth_max_in_flight": 2.5}, "cloud.auth_max_in_flight"),
        ({"auth_cache_entries": 0}, "cloud.auth_cache_entries"),
        ({"auth_negative_s": -1}, "cloud.auth_negative_s"),
    ]
    auth = LinkConfig.from_dict({"online_auth": False, "auth_deadline_s": 2.5, "auth_max_in_flight": 4})
    assert not auth.online_auth and auth.auth_deadline_s == 2.5 and auth.auth_max_in_flight == 4
    for d, field in bad:
        with pytest.raises(ValidationError) as e:
            LinkConfig.from_dict(d)
        assert e.value.field == field, (d, e.value)


async def test_the_broker_keeps_messages_above_our_maximum_packet_size_from_us(broker):
    p = Probe(fast(broker.port, max_packet_bytes=64 * 1024))
    p.conn.start()
    await eventually(lambda: p.conn.connected, "connect")
    await asyncio.to_thread(publish_once, broker.port, "evc/demo/down/lists", b"x" * 100_000)
    await asyncio.to_thread(publish_once, broker.port, "evc/demo/down/cmd", b"small")
    await eventually(lambda: p.got, "the small message")
    assert p.got == [("evc/demo/down/cmd", b"small")]
    assert p.conn.connected
    await p.conn.stop()


async def test_an_outage_logs_one_warning_not_one_per_retry(broker, caplog):
    import logging
    caplog.set_level(logging.DEBUG, logger="edge.cloud")
    p = Probe(fast(broker.port))
    p.conn.start()
    await eventually(lambda: p.conn.connected, "connect")
    broker.stop()
    await eventually(lambda: p.conn.backoff.attempts >= 4, "several failed retries")
    broker.start()
    await eventually(lambda: p.conn.connected, "reconnect")
    await p.conn.stop()
    ours = [r for r in caplog.records if r.name.startswith("edge.cloud.")]
    warnings = [r for r in ours if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "lost" in warnings[0].getMessage()
    assert sum(1 for r in ours if r.levelno == logging.DEBUG and "failed" in r.getMessage()) >= 3
    assert any("up again" in r.getMessage() for r in ours if r.levelno == logging.INFO)


async def test_missing_tls_files_are_one_warning_and_retried_until_they_appear(tmp_path, pki, caplog):
    """The client (whose tls_set reads the files) used to be made outside the error
    handling: a missing CA file killed the link silently at start."""
    import logging
    import shutil
    caplog.set_level(logging.DEBUG, logger="edge.cloud")
    tls = TlsFiles(cafile=str(pki["ca"][0]), certfile=str(pki["server"][0]),
                   keyfile=str(pki["server"][1]))
    ca_copy = tmp_path / "later" / "ca.crt"
    with Broker(workdir=str(tmp_path / "b"), tls=tls) as b:
        p = Probe(fast(b.tls_port, tls=TlsConfig(ca_file=str(ca_copy), cert_file=str(pki["client"][0]),
                                                 key_file=str(pki["client"][1]))))
        p.conn.start()
        await eventually(lambda: p.conn.backoff.attempts >= 3, "retries while the CA file is missing")
        assert not p.conn.connected and "ca.crt" in p.conn.last_error
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "TLS files" in r.message]
        assert len(warnings) == 1
        ca_copy.parent.mkdir()
        shutil.copy(pki["ca"][0], ca_copy)
        await eventually(lambda: p.conn.connected, "connected once the CA file is there")
        await p.conn.stop()
