"""Topics, body validators and builders for each message type of docs/cloud-protocol.md.

Validators take a decoded body (a dict from ``codec``) and either return the body
(normalized where the protocol allows omissions) or raise ``ProtocolError`` naming the
field as ``body.<path>``. They check structure and types only; the lists' contents are
validated completely by the domain core (``GroupBook``) in ``apply``.
"""
from __future__ import annotations

import itertools
import os
import re
import reprlib
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from edge.cloud import codec
from edge.cloud.codec import EXPIRED, INVALID, ProtocolError

ROOT = "evc"
_SITE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# message type -> last topic segment
DOWN_TOPIC_OF: Dict[str, str] = {
    "snapshot": "lists", "delta": "lists",
    "remote_start": "cmd", "remote_stop": "cmd", "site_limit": "cmd",
    "sessions_request": "cmd",
    "status_request": "cmd",
    "ack": "ack",
    "auth_reply": "auth",
}
UP_TOPIC_OF: Dict[str, str] = {
    "records": "records", "snapshot_request": "request", "command_reply": "reply",
    "status": "status", "telemetry": "telemetry", "online": "online",
    "sessions_export": "export", "auth_request": "auth",
}
RETAINED_UP = ("status", "online")
COMMAND_TYPES = ("remote_start", "remote_stop", "site_limit", "sessions_request")

DELTA_LISTS = ("groups_upsert", "groups_remove", "drivers_upsert", "drivers_remove",
               "tokens_upsert", "tokens_remove")
MAX_DELTA_ITEMS = 100_000
MAX_SNAPSHOT_ITEMS = 1_000_000
MAX_ACK_IDS = 1000
MAX_LIMIT_AHEAD_S = 366 * 86400
LIMIT_REASONS = ("grid_operator", "time_of_day", "other")
REPLY_STATUSES = ("accepted", "rejected", "failed")
REQUEST_REASONS = ("version_mismatch", "delta_refused", "no_lists")
MAX_EXPORT_RECORDS = 500
AUTH_STATUSES = ("accepted", "rejected")
MAX_AUTH_VALIDITY_S = 366 * 86400
STATUS_REQUEST_REASONS = ("gap", "cloud_start", "other")


# -- topics ---------------------------------------------------------------------------

def check_site_id(site_id: str) -> str:
    if not isinstance(site_id, str) or not _SITE_RE.match(site_id):
        raise ValueError("site_id: must be 1 to 64 letters, digits, '_' or '-' (got %r)" % (site_id,))
    return site_id


def topic(site_id: str, direction: str, name: str) -> str:
    if direction not in ("down", "up"):
        raise ValueError("direction: must be 'down' or 'up' (got %r)" % (direction,))
    return "%s/%s/%s/%s" % (ROOT, check_site_id(site_id), direction, name)


def down_topic(site_id: str, msg_type: str) -> str:
    return topic(site_id, "down", DOWN_TOPIC_OF[msg_type])


def up_topic(site_id: str, msg_type: str) -> str:
    return topic(site_id, "up", UP_TOPIC_OF[msg_type])


def down_subscription(site_id: str) -> str:
    return "%s/%s/down/#" % (ROOT, check_site_id(site_id))


def up_subscription(site_id: str = "+") -> str:
    """The cloud side's subscription (``+`` for every site)."""
    if site_id != "+":
        check_site_id(site_id)
    return "%s/%s/up/#" % (ROOT, site_id)


def down_topic_name(site_id: str, topic_str: str) -> Optional[str]:
    """The last segment of a downstream topic of this site, or None if it is not one."""
    prefix = "%s/%s/down/" % (ROOT, site_id)
    if not isinstance(topic_str, str) or not topic_str.startswith(prefix):
        return None
    name = topic_str[len(prefix):]
    return name if name in set(DOWN_TOPIC_OF.values()) else None


def types_on_down_topic(name: str) -> Tuple[str, ...]:
    return tuple(t for t, n in DOWN_TOPIC_OF.items() if n == name)


def split_up_topic(topic_str: str) -> Optional[Tuple[str, str]]:
    """``(site_id, name)`` of an upstream topic, else None (used by the cloud side)."""
    parts = topic_str.split("/") if isinstance(topic_str, str) else []
    if len(parts) != 4 or parts[0] != ROOT or parts[2] != "up" or not _SITE_RE.match(parts[1]):
        return None
    if parts[3] not in UP_TOPIC_OF.values():
        return None
    return parts[1], parts[3]


# -- small checks raising ProtocolError(INVALID) ---------------------------------------------

def _bad(field: str, value: Any, message: str, code: str = INVALID) -> ProtocolError:
    return ProtocolError(code, field, value, message)


def _keys(body: dict, field: str, required: Iterable[str], optional: Iterable[str] = ()) -> None:
    """Required fields must be there. Fields this version does not know are allowed and
    left alone (forward compatibility inside a schema version, docs/cloud-protocol.md);
    ``optional`` only documents the known ones."""
    for key in body:
        if not isinstance(key, str):
            raise _bad(field, key, "field names must be texts")
    for key in required:
        if key not in body:
            raise _bad("%s.%s" % (field, key), None, "is missing")


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(field, value, "must be a whole number")
    if value < lo or value > hi:
        raise _bad(field, value, "must be between %d and %d" % (lo, hi))
    return value


def _ident(value: Any, field: str, max_len: int = 64) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise _bad(field, value, "must be a text of 1 to %d characters" % max_len)
    for ch in value:
        if ch <= " " or ch == "\x7f":
            raise _bad(field, value, "must not contain spaces or control characters")
    return value


def _list(value: Any, field: str, max_items: int) -> list:
    if not isinstance(value, list):
        raise _bad(field, value, "must be a list")
    if len(value) > max_items:
        raise _bad(field, len(value), "has more than %d items" % max_items)
    return value


def _bool(value: Any, field: str) -> bool:
    if value is not True and value is not False:
        raise _bad(field, value, "must be true or false")
    return value


# -- downstream bodies ----------------------------------------------------------------------------

def validate_snapshot(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("version", "groups", "drivers", "tokens"))
    if "history" in body:
        # The edge keeps the history of its lists itself; a stored snapshot carrying one
        # would replace it on the next start.
        raise _bad("body.history", body["history"], "is the edge's own record, not the cloud's")
    _int(body["version"], "body.version", 1, 2 ** 53)
    for name in ("groups", "drivers", "tokens"):
        _list(body[name], "body." + name, MAX_SNAPSHOT_ITEMS)
    return body


def validate_delta(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("base_version", "version"), DELTA_LISTS)
    base = _int(body["base_version"], "body.base_version", 0, 2 ** 53)
    version = _int(body["version"], "body.version", 1, 2 ** 53)
    if version <= base:
        raise _bad("body.version", version, "must be greater than base_version %d" % base)
    out = {"base_version": base, "version": version}
    for name in DELTA_LISTS:
        out[name] = _list(body.get(name, []), "body." + name, MAX_DELTA_ITEMS)
    return out


def validate_remote_start(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("request_id", "station", "connector", "payment_ref"), ("group_id",))
    _ident(body["request_id"], "body.request_id")
    _ident(body["station"], "body.station")
    _int(body["connector"], "body.connector", 1, 99)
    _ident(body["payment_ref"], "body.payment_ref", 128)
    group_id = body.get("group_id")
    if group_id is not None:
        _ident(group_id, "body.group_id")
    return {"request_id": body["request_id"], "station": body["station"],
            "connector": body["connector"], "payment_ref": body["payment_ref"],
            "group_id": group_id}


def validate_remote_stop(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("request_id", "session_id"))
    _ident(body["request_id"], "body.request_id")
    _ident(body["session_id"], "body.session_id", 128)
    return dict(body)


def validate_site_limit(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("request_id", "limit_id", "max_da", "reason"), ("expires_s",))
    _ident(body["request_id"], "body.request_id")
    _ident(body["limit_id"], "body.limit_id")
    if not isinstance(body["reason"], str) or body["reason"] not in LIMIT_REASONS:
        raise _bad("body.reason", body["reason"], "must be one of " + ", ".join(LIMIT_REASONS))
    max_da = body["max_da"]
    expires_s = body.get("expires_s")
    if max_da is not None:
        _int(max_da, "body.max_da", 0, 100_000)
        if expires_s is None:
            raise _bad("body.expires_s", None, "is required when max_da is set")
    if expires_s is not None:
        _int(expires_s, "body.expires_s", 0, 2 ** 40)
        if max_da is not None and expires_s <= now_s:
            raise _bad("body.expires_s", expires_s, "lies in the past (now %d)" % now_s, EXPIRED)
        if expires_s > now_s + MAX_LIMIT_AHEAD_S:
            raise _bad("body.expires_s", expires_s, "lies more than 366 days ahead")
    return {"request_id": body["request_id"], "limit_id": body["limit_id"], "max_da": max_da,
            "expires_s": expires_s, "reason": body["reason"]}


def validate_sessions_request(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("request_id", "from_s", "to_s"), ("max_records",))
    _ident(body["request_id"], "body.request_id")
    from_s = _int(body["from_s"], "body.from_s", 0, 2 ** 40)
    to_s = _int(body["to_s"], "body.to_s", 0, 2 ** 40)
    if to_s <= from_s:
        raise _bad("body.to_s", to_s, "must be after from_s %d" % from_s)
    max_records = body.get("max_records")
    if max_records is not None:
        _int(max_records, "body.max_records", 1, MAX_EXPORT_RECORDS)
    return {"request_id": body["request_id"], "from_s": from_s, "to_s": to_s,
            "max_records": max_records}


def validate_auth_reply(body: dict, now_s: int = 0) -> dict:
    """The cloud's answer to an ``auth_request``. The tariff is checked by the domain
    core (edge.core.tariff) where the answer is used; here only its shape."""
    _keys(body, "body", ("request_id", "status", "reason"),
          ("group_id", "provider", "expires_s", "tariff"))
    _ident(body["request_id"], "body.request_id")
    status = body["status"]
    if status not in AUTH_STATUSES:
        raise _bad("body.status", status, "must be one of " + ", ".join(AUTH_STATUSES))
    _ident(body["reason"], "body.reason", 32)
    group_id = body.get("group_id")
    provider = body.get("provider")
    expires_s = body.get("expires_s")
    tariff = body.get("tariff")
    if group_id is not None:
        _ident(group_id, "body.group_id")
    if provider is not None:
        _ident(provider, "body.provider")
    if expires_s is not None:
        _int(expires_s, "body.expires_s", 0, 2 ** 40)
    if tariff is not None and not isinstance(tariff, dict):
        raise _bad("body.tariff", tariff, "must be a map or null")
    if status == "accepted":
        for name, value in (("group_id", group_id), ("expires_s", expires_s)):
            if value is None:
                raise _bad("body." + name, None, "is required when accepted")
    return {"request_id": body["request_id"], "status": status, "reason": body["reason"],
            "group_id": group_id, "provider": provider, "expires_s": expires_s, "tariff": tariff}


def validate_status_request(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("request_id", "reason"), ("have_stream", "have_seq"))
    _ident(body["request_id"], "body.request_id")
    if body["reason"] not in STATUS_REQUEST_REASONS:
        raise _bad("body.reason", body["reason"], "must be one of " + ", ".join(STATUS_REQUEST_REASONS))
    if body.get("have_stream") is not None:
        _ident(body["have_stream"], "body.have_stream", 16)
    if body.get("have_seq") is not None:
        _int(body["have_seq"], "body.have_seq", 0, 2 ** 53)
    return {"request_id": body["request_id"], "reason": body["reason"],
            "have_stream": body.get("have_stream"), "have_seq": body.get("have_seq")}


def validate_ack(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("ids",))
    ids = _list(body["ids"], "body.ids", MAX_ACK_IDS)
    if not ids:
        raise _bad("body.ids", ids, "must not be empty")
    for i, rid in enumerate(ids):
        _ident(rid, "body.ids[%d]" % i)
    return {"ids": ids}


DOWN_VALIDATORS: Dict[str, Callable[[dict, int], dict]] = {
    "snapshot": validate_snapshot, "delta": validate_delta,
    "remote_start": validate_remote_start, "remote_stop": validate_remote_stop,
    "site_limit": validate_site_limit, "ack": validate_ack,
    "sessions_request": validate_sessions_request, "auth_reply": validate_auth_reply,
    "status_request": validate_status_request,
}


# -- upstream bodies (validated by the cloud side, and by the edge before sending) ---------

def validate_records(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("records",))
    _record_list(body["records"], "body.records")
    return body


def validate_sessions_export(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("request_id", "part", "last", "records"), ("total",))
    _ident(body["request_id"], "body.request_id")
    _int(body["part"], "body.part", 1, 2 ** 31)
    if _bool(body["last"], "body.last") and body.get("total") is None:
        raise _bad("body.total", None, "is required on the last part")
    if body.get("total") is not None:
        _int(body["total"], "body.total", 0, 2 ** 40)
    _record_list(body["records"], "body.records")
    return body


def validate_auth_request(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("request_id", "token", "station", "connector"))
    _ident(body["request_id"], "body.request_id")
    token = body["token"]
    if not isinstance(token, str) or not 0 < len(token) <= 36:
        raise _bad("body.token", token, "must be a text of 1 to 36 characters")
    _ident(body["station"], "body.station")
    if body["connector"] is not None:
        _int(body["connector"], "body.connector", 1, 99)
    return body


def _record_list(value: Any, field: str) -> list:
    records = _list(value, field, codec.DEFAULT_LIMITS.records_count)
    for i, rec in enumerate(records):
        item = "%s[%d]" % (field, i)
        if not isinstance(rec, dict):
            raise _bad(item, rec, "must be a map")
        _keys(rec, item, ("id", "kind", "key", "at_s", "body"))
        _ident(rec["id"], item + ".id")
        _ident(rec["kind"], item + ".kind", 32)
        if not isinstance(rec["key"], str) or not 0 < len(rec["key"]) <= 128:
            raise _bad(item + ".key", rec["key"], "must be a text of 1 to 128 characters")
        _int(rec["at_s"], item + ".at_s", 0, 2 ** 40)
    return records


def validate_snapshot_request(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("have_version", "reason"), ("ref_id",))
    if body["have_version"] is not None:
        _int(body["have_version"], "body.have_version", 0, 2 ** 53)
    if body["reason"] not in REQUEST_REASONS:
        raise _bad("body.reason", body["reason"], "must be one of " + ", ".join(REQUEST_REASONS))
    return body


def validate_command_reply(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("request_id", "command", "status", "reason"), ("session_id",))
    _ident(body["request_id"], "body.request_id")
    if body["command"] not in COMMAND_TYPES:
        raise _bad("body.command", body["command"], "must be one of " + ", ".join(COMMAND_TYPES))
    if body["status"] not in REPLY_STATUSES:
        raise _bad("body.status", body["status"], "must be one of " + ", ".join(REPLY_STATUSES))
    _ident(body["reason"], "body.reason")
    return body


def validate_online(body: dict, now_s: int = 0) -> dict:
    _keys(body, "body", ("online",), ("lists_version", "outbox_count"))
    _bool(body["online"], "body.online")
    return body


def _validate_stream(body: dict, items: str) -> dict:
    # Only the sequence fields: the entries are built by the edge itself, and checking
    # every station of a large site on each message would cost more than it finds.
    _ident(body.get("stream"), "body.stream", 16)
    _int(body.get("seq"), "body.seq", 1, 2 ** 53)
    _bool(body.get("full"), "body.full")
    _list(body.get(items), "body." + items, MAX_SNAPSHOT_ITEMS)
    return body


def validate_status(body: dict, now_s: int = 0) -> dict:
    return _validate_stream(body, "stations")


def validate_telemetry(body: dict, now_s: int = 0) -> dict:
    return _validate_stream(body, "allocations")


UP_VALIDATORS: Dict[str, Callable[[dict, int], dict]] = {
    "records": validate_records, "snapshot_request": validate_snapshot_request,
    "command_reply": validate_command_reply, "online": validate_online,
    "status": validate_status, "telemetry": validate_telemetry,
    "sessions_export": validate_sessions_export, "auth_request": validate_auth_request,
}


# -- message ids ----------------------------------------------------------------------------------

class MessageIds:
    """Ids for messages this side sends: ``<prefix>-<n>``, prefix random per process so
    ids from two runs do not collide in the cloud's logs."""

    def __init__(self, prefix: Optional[str] = None) -> None:
        self.prefix = prefix if prefix is not None else "e" + os.urandom(3).hex()
        self._n = itertools.count(1)

    def __call__(self) -> str:
        return "%s-%d" % (self.prefix, next(self._n))


# -- builders -------------------------------------------------------------------------------------

def build(site_id: str, msg_type: str, body: dict, msg_id: str, at_s: int,
          validate: bool = True) -> Tuple[str, bytes]:
    """``(topic, payload)`` of any message type, either direction.

    ``validate=False`` exists for tests and the cloud peer that must send wrong bodies.
    """
    if msg_type in DOWN_TOPIC_OF:
        t = down_topic(site_id, msg_type)
        validator = DOWN_VALIDATORS[msg_type]
    elif msg_type in UP_TOPIC_OF:
        t = up_topic(site_id, msg_type)
        validator = UP_VALIDATORS[msg_type]
    else:
        raise ValueError("unknown message type %r" % (msg_type,))
    if validate:
        # site_limit expiry is judged against the sender's clock at build time.
        validator(body, int(at_s))
    return t, codec.encode_envelope(msg_type, msg_id, site_id, at_s, body)


def snapshot_request(site_id: str, msg_id: str, at_s: int, have_version: Optional[int],
                     reason: str, ref_id: Optional[str] = None) -> Tuple[str, bytes]:
    body = {"have_version": have_version or None, "reason": reason}
    if ref_id is not None:
        body["ref_id"] = ref_id
    return build(site_id, "snapshot_request", body, msg_id, at_s)


def command_reply(site_id: str, msg_id: str, at_s: int, request_id: str, command: str,
                  status: str, reason: str, session_id: Optional[str] = None) -> Tuple[str, bytes]:
    body = {"request_id": request_id, "command": command, "status": status, "reason": reason,
            "session_id": session_id}
    return build(site_id, "command_reply", body, msg_id, at_s)


def online(site_id: str, msg_id: str, at_s: int, is_online: bool,
           lists_version: Optional[int] = None, outbox_count: Optional[int] = None) -> Tuple[str, bytes]:
    """The retained online state; with ``is_online=False`` it is the MQTT last will."""
    body = {"online": bool(is_online), "lists_version": lists_version, "outbox_count": outbox_count}
    return build(site_id, "online", body, msg_id, at_s)


def status(site_id: str, msg_id: str, at_s: int, body: dict) -> Tuple[str, bytes]:
    """A ``StatusStream`` body: the whole station table or the stations that changed."""
    return build(site_id, "status", body, msg_id, at_s)


def telemetry(site_id: str, msg_id: str, at_s: int, body: dict) -> Tuple[str, bytes]:
    return build(site_id, "telemetry", body, msg_id, at_s)


_repr = reprlib.Repr()
_repr.maxstring = 200
_repr.maxother = 200
_repr.maxlevel = 3


def _short_text(value: Any) -> str:
    # Bounded: a hostile value may be a huge or deeply nested structure.
    if isinstance(value, str):
        return value[:201]
    try:
        return _repr.repr(value)
    except Exception:
        return "<unprintable %s>" % type(value).__name__


def error_record(err: ProtocolError, lists_version: Optional[int]) -> dict:
    """Body of an upstream ``error`` record for a refused downstream message."""
    text = _short_text(err.value)
    if len(text) > 200:
        text = text[:197] + "..."
    return {"ref_type": err.ref_type, "ref_id": err.ref_id, "code": err.code,
            "field": err.field, "value": text, "message": err.message,
            "lists_version": lists_version}
