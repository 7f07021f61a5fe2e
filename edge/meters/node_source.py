"""Meters read by a meter node (edge/node): their registers arrive over MQTT.

A meter configured with ``source = "node"`` is not polled by the gateway. Its node
(a MicroPython board on the meter's RS-485 bus) publishes the raw registers of each
poll to the gateway's own broker (edge/node/messages.py has the format); this module
subscribes, checks every message completely, and hands the registers to the
``MeterPoller``, which decodes them with the same decoder as a polled meter and keeps
them under the same staleness rule. A node that stops publishing is exactly a meter
that stops answering: its last reading ages, and the allocation goes fail-safe after
``meter_max_age_s`` (docs/load-management.md), the same bound as a polled meter.

Each reading is dated when it arrived, less the node's own ``age_ms`` (the time
between the meter's answer and the publish, measured on the node): the gateway trusts
no board clock. A message that is not what a node sends (wrong topic, node id or
model, a block the read plan does not have, more than 4 KiB) is dropped and logged
once per node and kind; one bad message never touches a reading.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Optional

import msgpack
import paho.mqtt.client as mqtt

from edge.core.errors import ValidationError
from edge.meters.config import MeterConfig
from edge.node import messages
from edge.node.config import valid_node_id

log = logging.getLogger(__name__)

MAX_PAYLOAD = 4096
ERROR_KINDS = ("timeout", "exception", "protocol")
GATEWAY_USER = "edge.gateway"     # a '.' no node id can have (edge/deploy/mosquitto/nodes.acl)


class NodeMessageError(ValueError):
    """A message that a node does not send; ``kind`` groups the log lines."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class NodeBrokerConfig:
    """The ``nodes`` section of the site file: how the gateway reaches its own broker."""

    KEYS = ("host", "port", "username", "password", "client_id", "keepalive_s")

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, username: Optional[str] = GATEWAY_USER,
                 password: Optional[str] = None, client_id: Optional[str] = None, keepalive_s: int = 30):
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.client_id = client_id
        self.keepalive_s = keepalive_s

    @classmethod
    def from_dict(cls, d: Any, field: str = "nodes") -> "NodeBrokerConfig":
        if not isinstance(d, dict):
            raise ValidationError(field, d, "must be a table/object (the gateway's broker for meter nodes)")
        for key in d:
            if key not in cls.KEYS:
                raise ValidationError(f"{field}.{key}", d[key], "unknown setting; known: " + ", ".join(cls.KEYS))
        for key in ("host", "username", "password", "client_id"):
            if key in d and d[key] is not None and (not isinstance(d[key], str) or not d[key]):
                raise ValidationError(f"{field}.{key}", "***" if key == "password" else d[key],
                                      "must be a non-empty text")
        for key, lo, hi in (("port", 1, 65535), ("keepalive_s", 5, 3600)):
            if key in d and (isinstance(d[key], bool) or not isinstance(d[key], int) or not lo <= d[key] <= hi):
                raise ValidationError(f"{field}.{key}", d[key], f"must be a whole number from {lo} to {hi}")
        return cls(**d)


def check_node_meters(meters: list[MeterConfig], nodes: Optional[NodeBrokerConfig]) -> None:
    """Node meters need the broker section; it is refused when no meter uses it."""
    node_meters = [i for i, m in enumerate(meters) if m.source == "node"]
    if node_meters and nodes is None:
        raise ValidationError(f"meters[{node_meters[0]}].source", "node",
                              "needs a [nodes] section: the broker the meter nodes publish to")


def parse_reading(topic: str, payload: bytes) -> dict:
    """A node's reading or failure message, checked completely; raises NodeMessageError."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != messages.PREFIX or parts[2] != "reading" or not valid_node_id(parts[1]):
        raise NodeMessageError("topic", "not a node reading topic: %r" % topic[:80])
    if len(payload) > MAX_PAYLOAD:
        raise NodeMessageError("size", "message of %d bytes (at most %d)" % (len(payload), MAX_PAYLOAD))
    try:
        msg = msgpack.unpackb(payload, strict_map_key=False, max_bin_len=0, max_ext_len=0)
    except Exception as exc:  # msgpack raises several kinds for broken input
        raise NodeMessageError("format", "not msgpack: %s" % str(exc)[:80]) from None
    if not isinstance(msg, dict):
        raise NodeMessageError("format", "not a map")
    if msg.get("v") != messages.VERSION:
        raise NodeMessageError("version", "message version %r (this gateway reads %d)"
                               % (str(msg.get("v"))[:20], messages.VERSION))
    if msg.get("node") != parts[1]:
        raise NodeMessageError("node", "node %r published under %r" % (str(msg.get("node"))[:40], parts[1]))
    for key in ("seq", "unit", "age_ms") + (("origin",) if "origin" in msg else ()):
        value = msg.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise NodeMessageError("format", "%s must be a whole number >= 0 (got %r)" % (key, str(value)[:20]))
    if not isinstance(msg.get("model"), str):
        raise NodeMessageError("format", "model must be a text")
    if "error" in msg:
        if msg["error"] not in ERROR_KINDS:
            raise NodeMessageError("format", "unknown error kind %r" % str(msg["error"])[:20])
        detail = msg.get("detail")
        msg["detail"] = detail[:120] if isinstance(detail, str) else ""
        return msg
    blocks = msg.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        raise NodeMessageError("format", "blocks must be a non-empty list")
    for blk in blocks:
        ok = (isinstance(blk, list) and len(blk) == 2 and isinstance(blk[0], int)
              and isinstance(blk[1], list)
              and all(isinstance(w, int) and not isinstance(w, bool) and 0 <= w <= 0xFFFF for w in blk[1]))
        if not ok:
            raise NodeMessageError("format", "a block must be [address, [16-bit words]]")
    return msg


class _NodeState:
    def __init__(self) -> None:
        self.last_seq: dict[int, int] = {}        # unit -> seq
        self.online: Optional[bool] = None
        self.messages = 0
        self.refused = 0
        self.noted: set[str] = set()              # kinds of bad message already logged


class NodeSource:
    """Subscribes to the meter nodes' topics and feeds their meters to the poller.

    ``poller`` needs ``ingest(meter_id, registers, at_s)`` and
    ``ingest_failure(meter_id, kind, message)`` (edge.meters.poller.MeterPoller).
    """

    def __init__(self, cfg: NodeBrokerConfig, meters: list[MeterConfig], poller: Any,
                 clock: Callable[[], float] = time.time, site_id: str = "edge"):
        self.cfg = cfg
        self.poller = poller
        self.clock = clock
        self.client_id = cfg.client_id or "edge-nodes-" + site_id
        self._by_key = {(m.node, m.device_id): m for m in meters if m.source == "node"}
        self._nodes = {node: _NodeState() for node, _ in self._by_key}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._client: Optional[mqtt.Client] = None
        self.connected = False
        self._warned = False

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                             client_id=self.client_id, protocol=mqtt.MQTTv311, clean_session=True)
        if self.cfg.username is not None:
            client.username_pw_set(self.cfg.username, self.cfg.password)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_message = self._paho_message
        self._client = client
        client.connect_async(self.cfg.host, self.cfg.port, self.cfg.keepalive_s)
        client.loop_start()
        log.info("meter nodes: subscribing at %s:%d for %s", self.cfg.host, self.cfg.port,
                 ", ".join("%s unit %d" % k for k in sorted(self._by_key)))

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            await asyncio.get_running_loop().run_in_executor(None, client.loop_stop)
        self.connected = False

    def status(self) -> dict:
        return {node: {"online": st.online, "messages": st.messages, "refused": st.refused}
                for node, st in self._nodes.items()}

    # -- paho's thread -> the loop -------------------------------------------------------
    def _paho_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            self._to_loop(self._broker_note, "broker %s:%d refused the gateway: %s" % (
                self.cfg.host, self.cfg.port, reason))
            return
        client.subscribe([(messages.PREFIX + "/+/reading", 0), (messages.PREFIX + "/+/status", 1)])
        self._to_loop(self._up)

    def _paho_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self._to_loop(self._broker_note, "connection to broker %s:%d lost (%s)" % (
            self.cfg.host, self.cfg.port, reason))

    def _paho_message(self, client, userdata, msg) -> None:
        self._to_loop(self.handle, msg.topic, bytes(msg.payload), self.clock())

    def _to_loop(self, fn, *args) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass

    def _up(self) -> None:
        self.connected = True
        if self._warned:
            log.info("meter nodes: broker %s:%d reachable again", self.cfg.host, self.cfg.port)
        self._warned = False

    def _broker_note(self, text: str) -> None:
        self.connected = False
        if not self._warned:
            log.warning("meter nodes: %s; node meters go stale until it is back (retrying)", text)
            self._warned = True

    # -- messages (loop thread) -----------------------------------------------------------
    def handle(self, topic: str, payload: bytes, received_s: float) -> None:
        """One message from the broker. Never raises."""
        if topic.endswith("/status"):
            self._status(topic, payload)
            return
        node = topic.split("/")[1] if topic.count("/") == 2 else "?"
        state = self._nodes.get(node)
        if state is None:
            return              # a node this site does not read (the ACL lets it publish)
        try:
            msg = parse_reading(topic, payload)
            meter = self._by_key.get((node, msg["unit"]))
            if meter is None:
                raise NodeMessageError("unit", "unit %d is not configured for node %s" % (msg["unit"], node))
            if msg["model"] != meter.model.name:
                raise NodeMessageError("model", "node reads unit %d as %s, the site file says %s (flash the node again)"
                                       % (msg["unit"], str(msg["model"])[:40], meter.model.name))
            origin = msg.get("origin", 0)
            if bool(meter.model.sunspec) != ("origin" in msg) and "error" not in msg:
                raise NodeMessageError("plan", "a SunSpec meter's reading needs its origin, no other has one")
            registers = None if "error" in msg else _registers(meter, msg["blocks"], origin)
        except NodeMessageError as exc:
            self._refuse(node, state, exc)
            return
        state.messages += 1
        last = state.last_seq.get(msg["unit"])
        state.last_seq[msg["unit"]] = msg["seq"]
        if last is not None and msg["seq"] == last:
            return                  # the same message twice
        if last is not None and msg["seq"] < last:
            log.info("meter node %s restarted (sequence %d after %d)", node, msg["seq"], last)
        if registers is None:
            self.poller.ingest_failure(meter.id, msg["error"], "node %s reports: %s" % (node, msg["detail"]))
            return
        self.poller.ingest(meter.id, registers, received_s - msg["age_ms"] / 1000.0, origin)

    def _refuse(self, node: str, state: _NodeState, exc: NodeMessageError) -> None:
        state.refused += 1
        if exc.kind not in state.noted:
            state.noted.add(exc.kind)
            log.warning("meter node %s: message dropped: %s (logged once per kind)", node, exc)

    def _status(self, topic: str, payload: bytes) -> None:
        node = topic.split("/")[1] if topic.count("/") == 2 else "?"
        state = self._nodes.get(node)
        if state is None:
            return
        try:
            msg = msgpack.unpackb(payload[:MAX_PAYLOAD], strict_map_key=False) if payload else {}
            online = bool(msg.get("online")) if isinstance(msg, dict) else False
        except Exception:
            online = False
        if online != state.online:
            if online:
                log.info("meter node %s online", node)
            elif state.online is not None or payload:
                log.warning("meter node %s offline (its last will): its meters go stale", node)
            state.online = online


def _registers(meter: MeterConfig, blocks: list, origin: int) -> dict[int, int]:
    """The words of a node's blocks by address; the blocks must be this model's read plan
    (from the SunSpec model's address ``origin``, 0 for other meters)."""
    plan = meter.model.read_blocks(origin)
    got = [(b[0], len(b[1])) for b in blocks]
    if got != plan:
        raise NodeMessageError("plan", "blocks %s are not the read plan of %s %s (flash the node again)"
                               % (str(got)[:80], meter.model.name, plan))
    registers: dict[int, int] = {}
    for address, words in blocks:
        registers.update(zip(range(address, address + len(words)), words))
    return registers
