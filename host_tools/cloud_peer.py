"""The cloud side of docs/cloud-protocol.md, for tests, benchmarks and demos.

Pushes snapshots and deltas, sends remote starts/stops and site limits, receives the
edges' record batches, acknowledges them by id and counts duplicates (a record id seen
before). ``serve_snapshot[site]`` answers that site's snapshot requests automatically.

Online authorization (the roaming hub's side): ``roaming[uid]`` lists the partner
tokens the cloud can vouch for (``{"provider": "DE*ABC", "valid_s": 600}``); an
``auth_request`` for one is accepted for the site's eRoaming group, unless that group
lists providers and not this one (``provider_not_allowed``), or its entry says
``"status": "blocked"`` (the provider ended the contract: ``token_blocked``). A token of
the site's own lists (``serve_snapshot``; asked because its group has
``check_online``) is answered from those lists as the cloud holds them now; any
other token is refused ``unknown_token``. ``auth_delay_s`` answers late, ``auth_silent`` not at all;
``auth_peak`` is the most questions outstanding at once. ``request_sessions`` asks an
edge for the sessions of a period; the parts arrive in ``exports[request_id]`` and
their records join ``records`` (duplicates counted in ``export_known``).

Station status and telemetry arrive as full messages and deltas: the peer keeps each
site's view (``status[site]``, ``telemetry_view[site]``) and, when a sequence number
shows it missed a message, ignores deltas and sends a ``status_request`` until a full
one arrives.
Its MQTT session is kept (clean_start False), so records published while it is briefly
disconnected are queued for it. Thread-based (paho's network thread): every method may
be called from any thread; ``wait_for`` blocks, tests on an asyncio loop poll the
counters instead.

CLI: ``python -m host_tools.cloud_peer --port 1883 --site demo [--snapshot FILE.json]
[--remote-start CP001:1:PAYREF] [--no-ack]`` serves the snapshot, sends the remote
start once the site is online, and prints every upstream message.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import socket
import sys
import threading
import time
from collections import Counter
from typing import Any, Callable, Dict, List, Optional

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.cloud import codec
from edge.core.groups import provider_key as _provider_key

log = logging.getLogger(__name__)

PREFIX = "evc"


def down_topic(site: str, name: str) -> str:
    return "%s/%s/down/%s" % (PREFIX, site, name)


class CloudPeer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        username: Optional[str] = None,
        password: Optional[str] = None,
        client_id: str = "cloud-peer",
        ack: bool = True,
        clock: Callable[[], float] = time.time,
        records_max_bytes: int = 4 * codec.MiB,
        on_event: Optional[Callable[[str, str, dict], None]] = None,
        session_expiry_s: int = 3600,
    ) -> None:
        self.host = host
        self.port = port
        self.ack_enabled = ack              # False: receive but never acknowledge
        self._clock = clock
        self._records_max = records_max_bytes
        self._on_event = on_event           # (site, type, body) of every upstream message
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        # Everything received, per site; guarded by _cond.
        self.records: Dict[str, Dict[str, dict]] = {}      # site -> record id -> record
        self.duplicates = 0
        self.batches = 0
        self.acked_ids = 0
        self.replies: List[dict] = []
        self.snapshot_requests: List[dict] = []
        self.online: Dict[str, dict] = {}
        self.status: Dict[str, dict] = {}
        self.telemetry: List[dict] = []                     # every telemetry body, as received
        self.status_log: List[dict] = []                    # every status body, with "site"
        self.telemetry_view: Dict[str, dict] = {}           # site -> {"site": {...}, "allocations": {...}}
        self.status_requests: List[dict] = []               # status_request bodies sent, with "site"
        self.gaps = 0                                       # state messages that showed a gap
        self.auto_status_request = True                     # False: only count gaps
        self._seq: Dict[tuple, tuple] = {}                  # (site, "status"|"telemetry") -> (stream, seq)
        self._awaiting: Dict[tuple, float] = {}             # (site, kind) -> when a full was requested
        self._stations: Dict[str, Dict[str, dict]] = {}     # site -> station id -> entry
        self.refused: List[str] = []                        # upstream payloads we could not read
        # site -> snapshot body: answered automatically to that site's snapshot requests
        self.serve_snapshot: Dict[str, dict] = {}
        self.per_type: Counter = Counter()
        # online authorization: uid (upper case) -> {"provider", "valid_s", "tariff"?}
        self.roaming: Dict[str, dict] = {}
        self.auth_delay_s = 0.0
        self.auth_silent = False
        self.auth_requests: List[dict] = []
        self.auth_outstanding = 0
        self.auth_peak = 0
        # sessions on request: request id -> {"parts", "records", "repeated", "total", "done"}
        self.exports: Dict[str, dict] = {}
        self.export_known = 0
        self.connected = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=mqtt.MQTTv5)
        self._session_expiry_s = session_expiry_s
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(0.05, 0.5)

    # ---- lifecycle ----
    def start(self, timeout_s: float = 10.0) -> "CloudPeer":
        # A kept session: records published while the peer is briefly disconnected (a
        # broker restart) are queued for it instead of lost.
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._session_expiry_s
        self._client.connect_async(self.host, self.port, keepalive=30, clean_start=False,
                                   properties=props)
        self._client.loop_start()
        if not self.connected.wait(timeout_s):
            self.stop()
            raise TimeoutError("cloud peer could not connect to %s:%d" % (self.host, self.port))
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> "CloudPeer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            log.warning("cloud peer refused by broker: %s", reason)
            return
        sock = client.socket()
        if sock is not None:        # answers go out at once, not after a delayed ACK
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.subscribe("%s/+/up/#" % PREFIX, qos=1)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self.connected.clear()

    # ---- downstream (to the edge) ----
    def next_id(self) -> str:
        return "c-%06d" % next(self._ids)

    def send(self, site: str, msg_type: str, body: dict, topic_name: str,
             msg_id: Optional[str] = None, wait: bool = True, qos: int = 1) -> str:
        msg_id = msg_id or self.next_id()
        payload = codec.encode_envelope(msg_type, msg_id, site, int(self._clock()), body)
        self.publish_raw(down_topic(site, topic_name), payload, wait, qos)
        return msg_id

    def publish_raw(self, topic: str, payload: bytes, wait: bool = True, qos: int = 1) -> None:
        """Any bytes to any topic (hostile-input tests)."""
        info = self._client.publish(topic, payload, qos=qos)
        if wait:
            info.wait_for_publish(10.0)

    def push_snapshot(self, site: str, snapshot: dict, msg_id: Optional[str] = None) -> str:
        return self.send(site, "snapshot", snapshot, "lists", msg_id)

    def push_delta(self, site: str, delta: dict, msg_id: Optional[str] = None) -> str:
        return self.send(site, "delta", delta, "lists", msg_id)

    def remote_start(self, site: str, request_id: str, station: str, connector: int,
                     payment_ref: str, group_id: Optional[str] = None) -> str:
        return self.send(site, "remote_start",
                         {"request_id": request_id, "station": station, "connector": connector,
                          "payment_ref": payment_ref, "group_id": group_id}, "cmd")

    def remote_stop(self, site: str, request_id: str, session_id: str) -> str:
        return self.send(site, "remote_stop", {"request_id": request_id, "session_id": session_id},
                         "cmd")

    def site_limit(self, site: str, request_id: str, limit_id: str, max_da: Optional[int],
                   expires_s: Optional[int], reason: str = "grid_operator") -> str:
        return self.send(site, "site_limit",
                         {"request_id": request_id, "limit_id": limit_id, "max_da": max_da,
                          "expires_s": expires_s, "reason": reason}, "cmd")

    def request_sessions(self, site: str, request_id: str, from_s: int, to_s: int,
                         max_records: Optional[int] = None) -> str:
        body: Dict[str, Any] = {"request_id": request_id, "from_s": from_s, "to_s": to_s}
        if max_records is not None:
            body["max_records"] = max_records
        with self._cond:
            self.exports[request_id] = {"parts": [], "records": {}, "repeated": 0,
                                        "total": None, "done": False}
        return self.send(site, "sessions_request", body, "cmd")

    def request_status(self, site: str, reason: str = "other", wait: bool = False) -> str:
        """Asks the edge for its full status and telemetry (``status_request``)."""
        key = (site, "status")
        have = self._seq.get(key)
        body = {"request_id": self.next_id(), "reason": reason,
                "have_stream": have[0] if have else None, "have_seq": have[1] if have else None}
        with self._cond:
            self.status_requests.append(dict(body, site=site))
        return self.send(site, "status_request", body, "cmd", wait=wait)

    def ack(self, site: str, ids: List[str]) -> None:
        # The protocol allows 1..1000 ids per ack. No waiting for the PUBACK: this also
        # runs inside paho's network thread, which would then wait for itself.
        for start in range(0, len(ids), 1000):
            self.send(site, "ack", {"ids": ids[start:start + 1000]}, "ack", wait=False)

    def ack_all(self, site: str) -> None:
        with self._cond:
            ids = list(self.records.get(site, {}))
        if ids:
            self.ack(site, ids)

    # ---- upstream (from the edge) ----
    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 4 or parts[0] != PREFIX or parts[2] != "up":
            return
        site = parts[1]
        payload = bytes(msg.payload)
        if not payload:
            return          # a cleared retained message
        try:
            env = codec.decode_envelope(payload, self._records_max, site)
        except codec.ProtocolError as exc:
            log.warning("cloud peer: unreadable message on %s: %s", msg.topic, exc)
            with self._cond:
                self.refused.append("%s: %s" % (msg.topic, exc))
                self._cond.notify_all()
            return
        to_ack: List[str] = []
        gap = False
        with self._cond:
            self.per_type[env.type] += 1
            if env.type == "records":
                to_ack = self._take_records(site, env.body)
            elif env.type == "command_reply":
                self.replies.append(dict(env.body, site=site))
            elif env.type == "snapshot_request":
                self.snapshot_requests.append(dict(env.body, site=site))
            elif env.type == "online":
                self.online[site] = dict(env.body, retained=bool(msg.retain))
            elif env.type == "status":
                self.status_log.append(dict(env.body, site=site))
                gap = self._take_state(site, "status", env.body)
            elif env.type == "telemetry":
                self.telemetry.append(env.body)
                gap = self._take_state(site, "telemetry", env.body)
            elif env.type == "sessions_export":
                self._take_export(site, env.body)
            elif env.type == "auth_request":
                self.auth_requests.append(dict(env.body, site=site))
                self.auth_outstanding += 1
                self.auth_peak = max(self.auth_peak, self.auth_outstanding)
            self._cond.notify_all()
        if gap and self.auto_status_request:
            self.request_status(site, "gap")
        if to_ack and self.ack_enabled:
            self.ack(site, to_ack)
        if env.type == "snapshot_request" and site in self.serve_snapshot:
            self.send(site, "snapshot", self.serve_snapshot[site], "lists", wait=False)
        if env.type == "auth_request":
            self._answer_auth(site, env.body)
        if self._on_event is not None:
            self._on_event(site, env.type, env.body)

    # ---- online authorization ----
    def auth_answer(self, site: str, request: dict) -> dict:
        """The reply body for one ``auth_request`` (the hub's decision)."""
        uid = str(request.get("token", "")).upper()
        entry = self.roaming.get(uid)
        reply: Dict[str, Any] = {"request_id": request.get("request_id"), "status": "rejected",
                                 "reason": "unknown_token"}
        if entry is None:
            return self._answer_from_lists(site, uid, reply)
        if entry.get("status") == "blocked":      # the provider ended the contract
            reply.update(reason="token_blocked", provider=entry["provider"])
            return reply
        group = self._roaming_group(site)
        if group is None:
            return reply
        allowed = group.get("providers")
        key = _provider_key(entry["provider"])
        if allowed is not None and key not in {_provider_key(p["id"]) for p in allowed}:
            reply.update(reason="provider_not_allowed", provider=entry["provider"])
            return reply
        reply.update(status="accepted", reason="accepted", group_id=group["id"],
                     provider=entry["provider"],
                     expires_s=int(self._clock()) + int(entry.get("valid_s", 3600)),
                     tariff=entry.get("tariff"))
        return reply

    def _answer_from_lists(self, site: str, uid: str, reply: Dict[str, Any]) -> Dict[str, Any]:
        """A token of the site's own lists (asked because its group has check_online):
        the cloud's current view of it, which may be newer than the edge's."""
        snapshot = self.serve_snapshot.get(site) or {}
        token = next((t for t in snapshot.get("tokens", []) if str(t.get("uid", "")).upper() == uid), None)
        if token is None:
            return reply
        now = int(self._clock())
        if token.get("status") == "blocked":
            reply.update(reason="token_blocked")
        elif token.get("expires_s") is not None and now >= token["expires_s"]:
            reply.update(reason="token_expired")
        else:
            reply.update(status="accepted", reason="accepted", group_id=token["groups"][0],
                         provider=token.get("provider"), expires_s=now + 3600)
        return reply

    def _roaming_group(self, site: str) -> Optional[dict]:
        snapshot = self.serve_snapshot.get(site) or {}
        for group in snapshot.get("groups", []):
            if group.get("kind") == "eroaming" and group.get("state", "active") == "active":
                return group
        return None

    def _answer_auth(self, site: str, request: dict) -> None:
        if self.auth_silent:
            return
        reply = self.auth_answer(site, request)

        def send() -> None:
            with self._cond:
                self.auth_outstanding -= 1
            self.send(site, "auth_reply", reply, "auth", wait=False, qos=0)

        if self.auth_delay_s > 0:
            timer = threading.Timer(self.auth_delay_s, send)
            timer.daemon = True
            timer.start()
        else:
            send()

    # ---- sessions on request ----
    def _take_export(self, site: str, body: dict) -> None:
        export = self.exports.setdefault(body.get("request_id"), {
            "parts": [], "records": {}, "repeated": 0, "total": None, "done": False})
        export["parts"].append(body.get("part"))
        store = self.records.setdefault(site, {})
        for rec in body.get("records") or []:
            rid = rec.get("id") if isinstance(rec, dict) else None
            if not isinstance(rid, str):
                self.refused.append("sessions_export: record without id")
                continue
            if rid in export["records"]:
                export["repeated"] += 1
            export["records"][rid] = rec
            if rid in store:
                self.export_known += 1      # the cloud had it: reconciliation drops it
            else:
                store[rid] = rec
        if body.get("last"):
            export["total"] = body.get("total")
            export["done"] = True

    def _take_state(self, site: str, kind: str, body: dict) -> bool:
        """Applies a status or telemetry message to the site's view; True when it showed a
        gap and no full one has been asked for recently (the caller then asks)."""
        key = (site, kind)
        stream, seq, full = body.get("stream"), body.get("seq"), body.get("full")
        if not isinstance(seq, int) or not isinstance(stream, str):
            self.refused.append("%s: no stream/seq" % kind)
            return False
        have = self._seq.get(key)
        if full:
            if have is not None and have[0] == stream and seq <= have[1]:
                return False        # an older full one (the retained copy after a resubscribe)
            self._awaiting.pop(key, None)
            self._seq[key] = (stream, seq)
            self._apply_state(site, kind, body, True)
            return False
        if have is not None and have[0] == stream and seq <= have[1]:
            return False            # a QoS 1 duplicate
        if have is None or have[0] != stream or seq != have[1] + 1:
            self.gaps += 1
            asked = self._awaiting.get(key)
            if asked is not None and self._clock() - asked < 60:
                return False
            self._awaiting[key] = self._clock()
            return True
        self._seq[key] = (stream, seq)
        self._apply_state(site, kind, body, False)
        return False

    def _apply_state(self, site: str, kind: str, body: dict, full: bool) -> None:
        if kind == "status":
            table = self._stations.setdefault(site, {})
            if full:
                table.clear()
            for entry in body.get("stations") or ():
                table[entry["id"]] = entry
            self.status[site] = {"stream": body["stream"], "seq": body["seq"],
                                 "stations": [table[s] for s in sorted(table)]}
            return
        view = self.telemetry_view.setdefault(site, {"site": {}, "allocations": {}})
        if full:
            view["allocations"].clear()
        view["site"] = {k: v for k, v in body.items() if k not in ("allocations", "full")}
        for a in body.get("allocations") or ():
            view["allocations"][(a["station"], a["connector"])] = a

    def _take_records(self, site: str, body: dict) -> List[str]:
        records = body.get("records")
        if not isinstance(records, list):
            self.refused.append("records: body.records is not a list")
            return []
        self.batches += 1
        store = self.records.setdefault(site, {})
        ids = []
        for rec in records:
            rid = rec.get("id") if isinstance(rec, dict) else None
            if not isinstance(rid, str):
                self.refused.append("records: record without id")
                continue
            if rid in store:
                self.duplicates += 1
            else:
                store[rid] = rec
            ids.append(rid)
        self.acked_ids += len(ids) if self.ack_enabled else 0
        return ids

    # ---- queries ----
    def wait_for(self, predicate: Callable[["CloudPeer"], bool], timeout_s: float = 20.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout_s)

    def record_count(self, site: str) -> int:
        with self._cond:
            return len(self.records.get(site, {}))

    def records_of(self, site: str, kind: Optional[str] = None) -> List[dict]:
        with self._cond:
            recs = list(self.records.get(site, {}).values())
        return [r for r in recs if kind is None or r.get("kind") == kind]


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description="Reference cloud peer (docs/cloud-protocol.md)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--user", default=None)
    parser.add_argument("--password", default=None)
    parser.add_argument("--site", required=True)
    parser.add_argument("--snapshot", default=None,
                        help="JSON file with a snapshot body: pushed, and served on requests")
    parser.add_argument("--remote-start", default=None, metavar="STATION:CONNECTOR:PAYREF")
    parser.add_argument("--no-ack", action="store_true", help="receive records without acking")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    pending_start = []
    if args.remote_start:
        station, _, rest = args.remote_start.partition(":")
        connector, _, payref = rest.partition(":")
        if not station or not connector.isdigit() or not payref:
            parser.error("--remote-start: expected STATION:CONNECTOR:PAYREF (got %r)"
                         % args.remote_start)
        pending_start.append((station, int(connector), payref))

    def on_event(site: str, kind: str, body: dict) -> None:
        print(site, kind, json.dumps(body, default=str), flush=True)
        # A remote start is sent once the edge is online, so it is not lost on an edge
        # that never connected before (no kept session yet).
        if kind == "online" and body.get("online") and site == args.site and pending_start:
            station, connector, payref = pending_start.pop()
            peer.send(site, "remote_start", {"request_id": peer.next_id(), "station": station,
                                             "connector": connector, "payment_ref": payref,
                                             "group_id": None}, "cmd", wait=False)

    peer = CloudPeer(args.host, args.port, args.user, args.password, ack=not args.no_ack,
                     on_event=on_event)
    if args.snapshot:
        with open(args.snapshot) as f:
            peer.serve_snapshot[args.site] = json.load(f)
    peer.start()
    if args.snapshot:
        print("snapshot sent as", peer.push_snapshot(args.site, peer.serve_snapshot[args.site]),
              flush=True)
    done = threading.Event()
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        peer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
