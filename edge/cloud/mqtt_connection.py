"""MqttConnection: keeps one paho-mqtt 2.x client connected to the broker.

Threads: paho's network thread (``loop_start``) only moves bytes; the blocking TCP
connect and TLS handshake run in the default executor. Every paho callback hands its
work to the asyncio loop with ``call_soon_threadsafe``. Publishing from the loop thread
is safe while paho's thread runs (paho then only queues the packet and wakes its thread).

Connection policy:
- MQTT 5 with ``clean_start=False`` and a session expiry: the broker keeps the
  subscription and queues downstream messages while the site is offline. If the broker
  answers "unsupported protocol version" the link falls back to MQTT 3.1.1 with
  ``clean_session=False`` (protocol "auto"; "5" or "3.1.1" pin one).
- QoS 1 everywhere. Downstream messages are acknowledged (PUBACK) only after the loop
  thread has handled them, so a crash in between makes the broker deliver them again.
- Reconnects are ours, not paho's (paho's retry has no jitter): each loss stops paho's
  thread, waits a ``Backoff`` delay, and reconnects the same client (its in-flight QoS 1
  state survives).
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import ssl
from typing import Any, Callable, Optional

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.cloud.backoff import Backoff
from edge.cloud.mqtt_config import LinkConfig

log = logging.getLogger(__name__)

# CONNACK reason "Unsupported Protocol Version" (MQTT 5: 0x84; a 3.1.1 broker answers
# return code 1, which paho reports under the same name).
_UNSUPPORTED_PROTOCOL = 0x84


class MqttConnection:
    """One paho client kept connected by an asyncio supervisor (see module doc).

    Callbacks run on the asyncio loop thread: ``on_up(session_present)``,
    ``on_down()``, ``on_message(topic, payload)``. ``will()`` returns the
    (topic, payload) registered as last will before every connect.
    """

    def __init__(
        self,
        cfg: LinkConfig,
        client_id: str,
        subscription: str,
        will: Callable[[], "tuple[str, bytes]"],
        on_up: Callable[[bool], None],
        on_down: Callable[[], None],
        on_message: Callable[[str, bytes], None],
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.cfg = cfg
        self.client_id = client_id
        self.subscription = subscription
        self._will = will
        self._on_up = on_up
        self._on_down = on_down
        self._on_message = on_message
        self.backoff = Backoff(cfg.backoff_base_s, cfg.backoff_cap_s, rng=rng)
        self.protocol = mqtt.MQTTv311 if cfg.protocol == "3.1.1" else mqtt.MQTTv5
        self.connected = False
        self.connects = 0                       # successful connects (for status/tests)
        self.last_error: Optional[str] = None
        self._client: Optional[mqtt.Client] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._lost = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: Optional[asyncio.Task] = None
        self._downgrade = False
        self._warned = False
        self._pending_sub: Optional["tuple[int, bool]"] = None   # paho thread only

    # ---- lifecycle (loop thread) ----
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._supervise(), name="cloudlink-supervisor")

    async def stop(self, last_words: Optional["tuple[str, bytes]"] = None) -> None:
        """Publishes ``last_words`` (retained) if connected, disconnects, joins the threads."""
        self._stopping.set()
        client = self._client
        if client is not None:
            if self.connected and last_words is not None:
                info = client.publish(last_words[0], last_words[1], qos=1, retain=True)
                await self._loop.run_in_executor(None, _wait_published, info,
                                                 self.cfg.stop_timeout_s)
            client.disconnect()
        self._lost.set()
        if self._task is not None:
            await self._task
            self._task = None

    def publish(self, topic: str, payload: bytes, retain: bool = False, qos: int = 1) -> bool:
        """QoS 1 publish (``qos=0`` for questions that are worthless after a few
        seconds); False (nothing queued) while offline: callers keep their data."""
        client = self._client
        if client is None or not self.connected:
            return False
        info = client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def publish_tracked(self, topic: str, payload: bytes) -> Optional[mqtt.MQTTMessageInfo]:
        """QoS 1 publish whose broker acknowledgement the caller can watch
        (``info.is_published()``); None while offline."""
        client = self._client
        if client is None or not self.connected:
            return None
        info = client.publish(topic, payload, qos=1)
        return info if info.rc == mqtt.MQTT_ERR_SUCCESS else None

    # ---- supervisor ----
    async def _supervise(self) -> None:
        loop = self._loop
        while not self._stopping.is_set():
            if self._client is None or self._downgrade:
                if self._downgrade:
                    log.warning("broker refused MQTT 5; falling back to MQTT 3.1.1")
                    self.protocol = mqtt.MQTTv311
                    self._downgrade = False
                try:
                    # tls_set() reads the CA, certificate and key files here: a missing or
                    # unreadable one is an incident like an unreachable broker, logged once
                    # and retried (the files may be put back), never a silently dead link.
                    self._client = self._make_client()
                except (OSError, ssl.SSLError, ValueError) as exc:
                    self._note_failure("TLS files of cloud.tls cannot be used (%s): %s: %s"
                                       % (_unreadable(self.cfg), type(exc).__name__, exc))
                    await self._pause(self.backoff.next_delay())
                    continue
            client = self._client
            self._lost.clear()
            topic, payload = self._will()
            client.will_set(topic, payload, qos=1, retain=True)
            try:
                await loop.run_in_executor(None, self._connect_blocking, client)
            except Exception as exc:    # OSError, SSLError, or a paho surprise: retry all
                self._note_failure("connect to %s:%s failed: %s: %s"
                                   % (self.cfg.host, self.cfg.port, type(exc).__name__, exc))
                await self._pause(self.backoff.next_delay())
                continue
            client.loop_start()
            await self._lost.wait()
            await loop.run_in_executor(None, client.loop_stop)
            if self.connected:
                self.connected = False
                self.backoff.disconnected()
                if not self._stopping.is_set():
                    self._note_failure("connection to %s:%s lost" % (self.cfg.host, self.cfg.port))
                self._on_down()
            if self._stopping.is_set():
                break
            if self._downgrade:
                continue
            await self._pause(self.backoff.next_delay())
        if self._client is not None:
            # A connect that completed after stop() began still gets a clean DISCONNECT.
            self._client.disconnect()
            await loop.run_in_executor(None, self._client.loop_stop)
        if self.connected:
            self.connected = False
            self._on_down()

    def _connect_blocking(self, client: mqtt.Client) -> None:
        if self.protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.cfg.session_expiry_s
            props.MaximumPacketSize = self.cfg.max_packet_bytes
            client.connect(self.cfg.host, self.cfg.port, self.cfg.keepalive_s,
                           clean_start=False, properties=props)
        else:
            client.connect(self.cfg.host, self.cfg.port, self.cfg.keepalive_s)
        _no_delay(client)

    async def _pause(self, delay_s: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), delay_s)
        except asyncio.TimeoutError:
            pass

    def _note_failure(self, text: str) -> None:
        self.last_error = text
        if not self._warned:            # one WARNING per outage, not per retry
            log.warning("cloud link: %s (retrying with backoff)", text)
            self._warned = True
        else:
            log.debug("cloud link: %s", text)

    def _make_client(self) -> mqtt.Client:
        v5 = self.protocol == mqtt.MQTTv5
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=self.protocol,
            clean_session=None if v5 else False,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        client.connect_timeout = self.cfg.connect_timeout_s
        if self.cfg.username is not None:
            client.username_pw_set(self.cfg.username, self.cfg.password)
        tls = self.cfg.tls
        if tls is not None:
            client.tls_set(ca_certs=tls.ca_file, certfile=tls.cert_file, keyfile=tls.key_file,
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
            client.tls_insecure_set(tls.insecure_skip_hostname)
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_message = self._paho_message
        client.on_subscribe = self._paho_subscribe
        return client

    # ---- paho thread -> loop thread ----
    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            # The loop is closed (process shutting down without stop()): nothing left
            # to hand the event to, and raising here would kill paho's thread noisily.
            log.debug("event %s after the loop closed", getattr(fn, "__name__", fn))

    def _paho_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            if reason.value == _UNSUPPORTED_PROTOCOL and self.cfg.protocol == "auto" \
                    and self.protocol == mqtt.MQTTv5:
                self._to_loop(self._set_downgrade)
            self._to_loop(self._note_failure, "broker refused: %s" % reason)
            return
        # Subscribing on every connect is harmless with a kept session and required
        # when the broker lost it (expired, restarted without persistence). The link
        # counts as up only at the SUBACK: the cloud answers "online" with messages,
        # and on a new session they would miss a subscription still in flight.
        _, mid = client.subscribe(self.subscription, qos=1)
        self._pending_sub = (mid, bool(flags.session_present))

    def _paho_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self._to_loop(self._lost.set)

    def _paho_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        self._to_loop(self._deliver, client, msg.topic, bytes(msg.payload), msg.mid, msg.qos)

    def _paho_subscribe(self, client, userdata, mid, reasons, properties) -> None:
        pending = self._pending_sub
        if pending is None or pending[0] != mid:
            return
        self._pending_sub = None
        self._to_loop(self._up, pending[1])
        for reason in reasons:
            if reason.is_failure:
                # Still up: records and replies can go out; the refusal is logged.
                self._to_loop(
                    self._note_failure, "subscription to %s refused: %s" % (self.subscription, reason))

    # ---- loop thread ----
    def _set_downgrade(self) -> None:
        self._downgrade = True

    def _up(self, session_present: bool) -> None:
        if self._stopping.is_set():
            return
        self.connected = True
        self.connects += 1
        self.backoff.connected()
        if self._warned:
            log.info("cloud link up again (%s:%s)", self.cfg.host, self.cfg.port)
        else:
            log.info("cloud link up (%s:%s, session present: %s)",
                     self.cfg.host, self.cfg.port, session_present)
        self._warned = False
        self.last_error = None
        self._on_up(session_present)

    def _deliver(self, client: mqtt.Client, topic: str, payload: bytes, mid: int, qos: int) -> None:
        try:
            self._on_message(topic, payload)
        except Exception:           # a bug in a handler must not stop the link
            log.exception("handling a message on %s failed", topic)
        # Not connected: no PUBACK; the broker redelivers it within the kept session.
        if qos > 0 and client is self._client and self.connected:
            client.ack(mid, qos)


def _no_delay(client: mqtt.Client) -> None:
    """Small messages go out at once: with Nagle's algorithm a QoS 1 publish waits for
    the previous segment's (delayed) ACK, up to 40 ms per hop, and a wallbox waiting
    for an online authorization feels every hop."""
    sock = client.socket()
    try:
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass


def _unreadable(cfg: LinkConfig) -> str:
    """Names the TLS files that are missing or unreadable (ssl's errors do not)."""
    tls = cfg.tls
    named = [("ca_file", tls.ca_file), ("cert_file", tls.cert_file), ("key_file", tls.key_file)] if tls else []
    bad = ["%s %s" % (key, path) for key, path in named if path and not os.access(path, os.R_OK)]
    return ", ".join(bad) + " missing or unreadable" if bad else "a file is not valid PEM"


def _wait_published(info: mqtt.MQTTMessageInfo, timeout_s: float) -> None:
    try:
        info.wait_for_publish(timeout_s)
    except (RuntimeError, ValueError):
        pass
