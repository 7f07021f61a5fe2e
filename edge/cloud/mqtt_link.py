"""CloudLink: the edge's MQTT connection to the cloud (paho-mqtt 2.x).

Three parts: ``LinkConfig`` (the validated ``cloud:`` settings), ``MqttConnection``
(keeps one paho client connected) and ``CloudLink`` (joins the connection to the
protocol modules: codec, messages, apply, batching; see docs/cloud-protocol.md).

Threads: paho's network thread (``loop_start``) only moves bytes; the blocking TCP
connect and TLS handshake run in the default executor. Every paho callback hands its
work to the asyncio loop with ``call_soon_threadsafe``, so the outbox, the lists store
and SQLite are only touched from the loop thread. Publishing from the loop thread is
safe while paho's thread runs (paho then only queues the packet and wakes its thread).

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
- The last will is the retained ``online: false`` envelope; a clean ``stop()``
  publishes the same itself, because a normal DISCONNECT suppresses the will.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import random
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional, Union

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.cloud import apply, messages
from edge.cloud.backoff import Backoff
from edge.cloud.batching import UpstreamBatcher
from edge.core.errors import ValidationError

log = logging.getLogger(__name__)

PROTOCOLS = ("auto", "5", "3.1.1")
# CONNACK reason "Unsupported Protocol Version" (MQTT 5: 0x84; a 3.1.1 broker answers
# return code 1, which paho reports under the same name).
_UNSUPPORTED_PROTOCOL = 0x84


@dataclass
class TlsConfig:
    ca_file: Optional[str] = None       # None: the system's trusted CAs
    cert_file: Optional[str] = None     # client certificate (the site's identity)
    key_file: Optional[str] = None
    insecure_skip_hostname: bool = False


@dataclass
class LinkConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: Optional[str] = None
    password: Optional[str] = None
    client_id: Optional[str] = None     # default "edge-<site_id>": stable, the session key
    protocol: str = "auto"
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    connect_timeout_s: float = 10.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    drain_poll_s: float = 1.0           # outbox re-check without a notify_outbox()
    resend_after_s: float = 60.0        # an unacknowledged batch is sent again
    batch_window: int = 4               # unacknowledged record batches in flight
    command_timeout_s: float = 90.0     # on_command must answer within this
    # MQTT 5 Maximum Packet Size: the broker drops larger messages for us instead of a
    # small board allocating them (the protocol's largest message is a 32 MiB snapshot).
    max_packet_bytes: int = 33 * 1024 * 1024
    stop_timeout_s: float = 5.0
    tls: Optional[TlsConfig] = None

    @classmethod
    def from_dict(cls, d: Dict[str, Any], field: str = "cloud") -> "LinkConfig":
        """Validates a config file's ``cloud:`` part; refuses unknown keys."""
        if not isinstance(d, dict):
            raise ValidationError(field, d, "must be an object")
        known = set(cls.__dataclass_fields__)
        for key in d:
            if key not in known:
                raise ValidationError("%s.%s" % (field, key), d[key], "unknown setting")
        cfg = cls()
        for key, value in d.items():
            path = "%s.%s" % (field, key)
            if key == "tls":
                value = _tls_from(value, path)
            elif key in ("host", "username", "password", "client_id", "protocol"):
                if value is not None and not isinstance(value, str):
                    raise ValidationError(path, value, "must be a text")
            elif key in ("port", "keepalive_s", "session_expiry_s", "batch_window",
                         "max_packet_bytes"):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValidationError(path, value, "must be an integer")
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValidationError(path, value, "must be a number")
            setattr(cfg, key, value)
        cfg.check(field)
        return cfg

    def check(self, field: str = "cloud") -> None:
        if not self.host:
            raise ValidationError(field + ".host", self.host, "must not be empty")
        if not 1 <= self.port <= 65535:
            raise ValidationError(field + ".port", self.port, "must be 1..65535")
        if self.protocol not in PROTOCOLS:
            raise ValidationError(field + ".protocol", self.protocol,
                                  "must be one of %s" % ", ".join(PROTOCOLS))
        if not 5 <= self.keepalive_s <= 3600:
            raise ValidationError(field + ".keepalive_s", self.keepalive_s, "must be 5..3600")
        if not 0 <= self.session_expiry_s <= 0xFFFFFFFF:
            raise ValidationError(field + ".session_expiry_s", self.session_expiry_s,
                                  "must be 0..4294967295")
        if not 64 * 1024 <= self.max_packet_bytes <= 268435455:
            raise ValidationError(field + ".max_packet_bytes", self.max_packet_bytes,
                                  "must be 65536..268435455")
        if not 1 <= self.batch_window <= 64:
            raise ValidationError(field + ".batch_window", self.batch_window, "must be 1..64")
        for name in ("connect_timeout_s", "backoff_base_s", "backoff_cap_s", "drain_poll_s",
                     "resend_after_s", "stop_timeout_s", "command_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValidationError("%s.%s" % (field, name), getattr(self, name), "must be > 0")
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValidationError(field + ".backoff_cap_s", self.backoff_cap_s,
                                  "must be >= backoff_base_s")
        if self.password is not None and self.username is None:
            raise ValidationError(field + ".password", "***", "needs a username")


def _tls_from(value: Any, path: str) -> Optional[TlsConfig]:
    if value is None or isinstance(value, TlsConfig):
        return value
    if not isinstance(value, dict):
        raise ValidationError(path, value, "must be an object or null")
    tls = TlsConfig()
    for key, item in value.items():
        if key not in TlsConfig.__dataclass_fields__:
            raise ValidationError("%s.%s" % (path, key), item, "unknown setting")
        if key == "insecure_skip_hostname":
            if not isinstance(item, bool):
                raise ValidationError("%s.%s" % (path, key), item, "must be true or false")
        elif item is not None and not isinstance(item, str):
            raise ValidationError("%s.%s" % (path, key), item, "must be a file path")
        setattr(tls, key, item)
    if (tls.cert_file is None) != (tls.key_file is None):
        raise ValidationError(path + ".key_file", tls.key_file,
                              "cert_file and key_file go together")
    return tls


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

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """QoS 1 publish; False (nothing queued) while offline: callers keep their data."""
        client = self._client
        if client is None or not self.connected:
            return False
        info = client.publish(topic, payload, qos=1, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    # ---- supervisor ----
    async def _supervise(self) -> None:
        loop = self._loop
        while not self._stopping.is_set():
            if self._client is None or self._downgrade:
                if self._downgrade:
                    log.warning("broker refused MQTT 5; falling back to MQTT 3.1.1")
                    self.protocol = mqtt.MQTTv311
                    self._downgrade = False
                self._client = self._make_client()
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


def _wait_published(info: mqtt.MQTTMessageInfo, timeout_s: float) -> None:
    try:
        info.wait_for_publish(timeout_s)
    except (RuntimeError, ValueError):
        pass


CommandResult = Dict[str, Any]      # {"status", "reason", "session_id"}
OnCommand = Callable[[dict], Union[CommandResult, Awaitable[CommandResult]]]


class CloudLink:
    """The edge's side of docs/cloud-protocol.md over MQTT.

    ``on_command(command)`` gets a validated ``remote_start``/``remote_stop`` body with
    ``"type"`` added and returns (or awaits to) ``{"status": "accepted"|"rejected"|
    "failed", "reason": code, "session_id": id or None}``; the link publishes the
    ``command_reply``. ``on_site_limit(limit)`` gets a validated ``site_limit`` body
    (``max_da`` None = cleared); expiry is judged by ``external_limit_da()``.
    ``lists`` is the ListsHolder (its ``.site`` validates the lists); ``outbox`` and
    ``lists_store`` are the SQLite stores, used only on the asyncio loop thread.
    """

    def __init__(
        self,
        cfg: Union[LinkConfig, Dict[str, Any]],
        site_id: str,
        lists: Any,
        outbox: Any,
        lists_store: Any,
        on_command: Optional[OnCommand] = None,
        on_site_limit: Optional[Callable[[dict], Any]] = None,
        clock: Callable[[], float] = time.time,
        *,
        site: Any = None,
        ids: Optional[Callable[[], str]] = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.cfg = cfg if isinstance(cfg, LinkConfig) else LinkConfig.from_dict(cfg)
        self.cfg.check()
        self.site_id = messages.check_site_id(site_id)
        if self.cfg.password is not None and self.cfg.tls is None \
                and self.cfg.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("cloud link: the MQTT password goes to %s without TLS", self.cfg.host)
        self.lists = lists
        self.outbox = outbox
        self.on_command = on_command
        self.on_site_limit = on_site_limit
        self._clock = clock
        self._ids = ids or messages.MessageIds()
        self.batcher = UpstreamBatcher(outbox, site_id, clock=clock, ids=self._ids,
                                       window=self.cfg.batch_window,
                                       resend_after_s=self.cfg.resend_after_s)
        self.handler = apply.DownstreamHandler(
            site if site is not None else lists.site, site_id, lists, lists_store, outbox,
            clock=clock, ids=self._ids, on_ack=self.batcher.ack)
        self.connection = MqttConnection(
            self.cfg, self.cfg.client_id or "edge-" + site_id, messages.down_subscription(site_id),
            will=self._will, on_up=self._on_up, on_down=self._on_down,
            on_message=self._on_message, rng=rng)
        self._status: Optional[List[dict]] = None
        self._kick = asyncio.Event()
        self._drain_task: Optional[asyncio.Task] = None
        self._closing = False
        self._command_tasks: set = set()
        # request_id -> reply body (None while running): QoS 1 may deliver a command
        # twice, and a wallbox must not be started twice for one payment.
        self._commands: "OrderedDict[str, Optional[dict]]" = OrderedDict()
        self.records_sent = 0

    # ---- public API ----
    @property
    def online(self) -> bool:
        return self.connection.connected

    async def start(self) -> None:
        self.connection.start()
        self._drain_task = asyncio.get_running_loop().create_task(self._drain(), name="cloudlink-drain")

    async def stop(self) -> None:
        """Clean shutdown: retained ``online: false``, DISCONNECT, threads joined."""
        for task in list(self._command_tasks):
            task.cancel()
        # A flag, not Task.cancel(): asyncio.wait_for in Python 3.11 can swallow a
        # cancellation that races with its inner wait finishing (the kick), and the
        # drain loop would then run on.
        self._closing = True
        self._kick.set()
        if self._drain_task is not None:
            await self._drain_task
            self._drain_task = None
        await self.connection.stop(last_words=self._online_message(False))

    def state(self) -> Dict[str, Any]:
        """Diagnostics for status pages and logs."""
        conn = self.connection
        return {"online": conn.connected, "connects": conn.connects,
                "protocol": "5" if conn.protocol == mqtt.MQTTv5 else "3.1.1",
                "last_error": conn.last_error, "batches_in_flight": self.batcher.in_flight,
                "records_sent": self.records_sent, "outbox_count": self.outbox.count(),
                "lists_version": self.lists.version}

    def notify_outbox(self) -> None:
        """New records were committed: send them now rather than at the next poll."""
        self._kick.set()

    def publish_status(self, stations: List[dict]) -> bool:
        """Retained station status; kept and re-sent after every connect."""
        self._status = stations
        return self._publish(*messages.status(self.site_id, self._ids(), self._now(), stations),
                             retain=True)

    def publish_telemetry(self, body: dict) -> bool:
        """Allocation telemetry; dropped (False) while offline: only the latest matters."""
        return self._publish(*messages.telemetry(self.site_id, self._ids(), self._now(), body))

    def external_limit_da(self, now_s: Optional[float] = None) -> Optional[int]:
        """The cloud's site limit now (None when none or expired), for the allocation."""
        return self.handler.external_limit_da(now_s)

    # ---- internals ----
    def _now(self) -> int:
        return int(self._clock())

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        return self.connection.publish(topic, payload, retain)

    def _online_message(self, is_online: bool) -> "tuple[str, bytes]":
        if is_online:
            return messages.online(self.site_id, self._ids(), self._now(), True,
                                   self.lists.version or None, self.outbox.count())
        return messages.online(self.site_id, self._ids(), self._now(), False)

    def _will(self) -> "tuple[str, bytes]":
        return self._online_message(False)

    def _on_up(self, session_present: bool) -> None:
        topic, payload = self._online_message(True)
        self._publish(topic, payload, retain=True)
        for topic, payload, retain in self.handler.startup_messages():
            self._publish(topic, payload, retain)
        if self._status is not None:
            self._publish(*messages.status(self.site_id, self._ids(), self._now(), self._status),
                          retain=True)
        # Everything unacknowledged is due again; the cloud drops duplicates by id.
        self.batcher.on_connect()
        self._kick.set()

    def _on_down(self) -> None:
        log.debug("cloud link down; %d records wait in the outbox", self.outbox.count())

    def _on_message(self, topic: str, payload: bytes) -> None:
        done = self.handler.handle(topic, payload)
        for t, p, retain in done.publish:
            self._publish(t, p, retain)
        if done.outcome == apply.ACK:
            self._kick.set()
        elif done.outcome == apply.COMMAND:
            self._start_command(done.command)
        elif done.outcome == apply.SITE_LIMIT:
            self._take_site_limit(done.site_limit)
        if done.outcome == apply.REFUSED:
            self._kick.set()        # an error record was queued

    def _take_site_limit(self, limit: dict) -> None:
        status, reason = "accepted", "accepted"
        if self.on_site_limit is not None:
            try:
                self.on_site_limit(limit)
            except Exception:
                log.exception("on_site_limit failed for %s", limit.get("limit_id"))
                status, reason = "failed", "internal_error"
        self._reply(limit["request_id"], "site_limit", status, reason, None)

    def _start_command(self, command: dict) -> None:
        rid = command["request_id"]
        if rid in self._commands:
            reply = self._commands[rid]
            if reply is not None:       # finished before: answer again, do not re-run
                self._publish(*messages.command_reply(self.site_id, self._ids(), self._now(), **reply))
            return
        self._commands[rid] = None
        while len(self._commands) > 512:
            self._commands.popitem(last=False)
        task = asyncio.get_running_loop().create_task(self._run_command(command))
        self._command_tasks.add(task)
        task.add_done_callback(self._command_tasks.discard)

    async def _run_command(self, command: dict) -> None:
        rid, kind = command["request_id"], command["type"]
        status, reason, session_id = "failed", "internal_error", None
        try:
            if self.on_command is None:
                raise RuntimeError("no command handler configured")
            result = self.on_command(dict(command))
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, self.cfg.command_timeout_s)
            status, reason, session_id = _command_result(result)
        except asyncio.TimeoutError:
            status, reason = "failed", "timeout"
            log.warning("%s %s: no answer within %.0f s", kind, rid, self.cfg.command_timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s %s failed", kind, rid)
        self._reply(rid, kind, status, reason, session_id)

    def _reply(self, rid: str, kind: str, status: str, reason: str, session_id: Optional[str]) -> None:
        reply = {"request_id": rid, "command": kind, "status": status, "reason": reason,
                 "session_id": session_id}
        try:
            message = messages.command_reply(self.site_id, self._ids(), self._now(), **reply)
        except ValueError as exc:       # ProtocolError too: e.g. a reason with spaces
            log.warning("%s %s: handler result not sendable (%s); replying internal_error",
                        kind, rid, exc)
            reply.update(status="failed", reason="internal_error")
            message = messages.command_reply(self.site_id, self._ids(), self._now(), **reply)
        if kind != "site_limit":
            self._commands[rid] = reply
        # Offline: the cloud gets no reply; it sees the session record (outbox) or retries.
        self._publish(*message)

    async def _drain(self) -> None:
        """Publishes due record batches: on a kick (new records, acks, connect) or a poll."""
        while not self._closing:
            try:
                await asyncio.wait_for(self._kick.wait(), self.cfg.drain_poll_s)
            except asyncio.TimeoutError:
                pass
            self._kick.clear()
            if self._closing or not self.connection.connected:
                continue
            try:
                for batch in self.batcher.due_batches():
                    if not self._publish(batch.topic, batch.payload):
                        break           # went offline; on_connect resends from the start
                    self.records_sent += len(batch.record_ids)
            except Exception:
                log.exception("draining the outbox failed; retrying at the next poll")


def _command_result(result: Any) -> "tuple[str, str, Optional[str]]":
    if not isinstance(result, dict):
        raise TypeError("on_command must return a dict, got %r" % (result,))
    status = result.get("status")
    if status not in messages.REPLY_STATUSES:
        raise ValueError("on_command status must be one of %s, got %r"
                         % (messages.REPLY_STATUSES, status))
    reason = result.get("reason") or status
    session_id = result.get("session_id")
    return status, str(reason), session_id if isinstance(session_id, str) else None
