"""msgpack envelopes of the cloud protocol (docs/cloud-protocol.md), decoded strictly.

Every downstream payload comes from the network and is treated as hostile: its size is
checked before any decoding, the decoder refuses anything that is not exactly one
well-formed msgpack object of the kinds the protocol uses, and the envelope fields are
checked before a body validator ever sees the body. All refusals raise
``ProtocolError`` carrying a protocol error code, so the caller can answer the cloud
with an error record without knowing which layer refused.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Optional

import msgpack

from edge.core.errors import ValidationError

SCHEMA_VERSION = 1

MiB = 1024 * 1024
KiB = 1024

# Error codes carried in upstream error records (docs/cloud-protocol.md).
MALFORMED = "malformed"
TOO_LARGE = "too_large"
SCHEMA = "schema_version"
UNKNOWN_TYPE = "unknown_type"
WRONG_TOPIC = "wrong_topic"
WRONG_SITE = "wrong_site"
INVALID = "invalid"
VERSION_MISMATCH = "version_mismatch"
STALE_VERSION = "stale_version"
EXPIRED = "expired"
INTERNAL = "internal"   # the edge failed (e.g. could not store): not the sender's fault
GROUP_IN_USE = "group_in_use"      # lists would drop a group the edge's sessions reference
GROUP_ARCHIVED = "group_archived"  # lists would change an archived group (other than its name)

_ENVELOPE_KEYS = ("v", "type", "id", "site", "at_s", "body")


class ProtocolError(ValidationError):
    """A message was refused. ``code`` is the protocol error code; ``ref_type`` and
    ``ref_id`` name the refused message when its envelope could be read."""

    def __init__(self, code: str, field: str, value: Any, message: str,
                 ref_type: Optional[str] = None, ref_id: Optional[str] = None) -> None:
        super().__init__(field, value, message)
        self.code = code
        self.ref_type = ref_type
        self.ref_id = ref_id


class Limits:
    """Size limits of the protocol; every downstream type has a maximum payload size."""

    def __init__(self, snapshot_bytes: int = 32 * MiB, delta_bytes: int = 4 * MiB,
                 other_down_bytes: int = 64 * KiB, records_bytes: int = 256 * KiB,
                 records_count: int = 500, record_body_bytes: int = 64 * KiB,
                 max_str_bytes: int = 64 * KiB, max_items: int = 1_000_000,
                 max_total_items: int = 3_000_000) -> None:
        self.snapshot_bytes = snapshot_bytes
        self.delta_bytes = delta_bytes
        self.other_down_bytes = other_down_bytes
        self.records_bytes = records_bytes
        self.records_count = records_count
        self.record_body_bytes = record_body_bytes
        self.max_str_bytes = max_str_bytes
        self.max_items = max_items
        self.max_total_items = max_total_items

    def for_type(self, msg_type: str) -> int:
        if msg_type == "snapshot":
            return self.snapshot_bytes
        if msg_type == "delta":
            return self.delta_bytes
        return self.other_down_bytes


DEFAULT_LIMITS = Limits()


class Envelope:
    """A decoded, envelope-checked message. ``body`` is not yet validated."""

    __slots__ = ("v", "type", "id", "site", "at_s", "body", "size")

    def __init__(self, v: int, type: str, id: str, site: str, at_s: int,
                 body: dict, size: int) -> None:
        self.v = v
        self.type = type
        self.id = id
        self.site = site
        self.at_s = at_s
        self.body = body
        self.size = size

    def __repr__(self) -> str:
        return "Envelope(type=%r, id=%r, site=%r, size=%d)" % (self.type, self.id, self.site, self.size)


class _Budget:
    """Counts decoded map pairs and array items across the whole payload.

    Per-container limits alone do not bound memory: 32 MiB of nested arrays of empty
    maps would become tens of millions of objects. The hooks run as each container is
    finished, so decoding stops soon after the budget is spent.
    """

    __slots__ = ("left",)

    def __init__(self, items: int) -> None:
        self.left = items

    def _spend(self, n: int) -> None:
        self.left -= n + 1
        if self.left < 0:
            raise ProtocolError(MALFORMED, "payload", None, "holds too many items in total")

    def pairs(self, pairs: list) -> dict:
        self._spend(len(pairs))
        d = dict(pairs)
        # msgpack keeps the last of duplicate keys silently; a hostile or buggy sender
        # could then make two readers see two different messages.
        if len(d) != len(pairs):
            seen = set()
            for key, _ in pairs:
                if key in seen:
                    raise ProtocolError(MALFORMED, "payload", key, "duplicate map key")
                seen.add(key)
        return d

    def items(self, items: list) -> list:
        self._spend(len(items))
        return items


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False
GC_PAUSE_BYTES = 256 * KiB


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many containers.

    Decoding a 100,000-token snapshot creates a few hundred thousand dicts and lists;
    each allocation burst triggers collections that walk the whole heap (including the
    book in force), which made decoding about five times slower. None of the new
    objects are cyclic garbage, so nothing is lost by collecting later. Nested and
    concurrent pauses are counted so the collector is re-enabled exactly once.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def encode(obj: Any) -> bytes:
    """Pack a protocol object. Floats, bytes and other non-protocol types are refused,
    so the edge never sends what it would refuse itself."""
    try:
        return msgpack.packb(obj, use_bin_type=True, strict_types=False, default=_refuse_type)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError("not encodable as protocol msgpack: %s" % exc) from None


def _refuse_type(obj: Any) -> Any:
    raise TypeError("type %s is not part of the protocol" % type(obj).__name__)


def decode_payload(payload: bytes, max_bytes: int, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Strictly decode one msgpack object of at most ``max_bytes`` bytes."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise ProtocolError(MALFORMED, "payload", type(payload).__name__, "must be bytes")
    size = len(payload)
    if size > max_bytes:
        raise ProtocolError(TOO_LARGE, "payload", size,
                            "is larger than the limit of %d bytes" % max_bytes)
    if size == 0:
        raise ProtocolError(MALFORMED, "payload", 0, "is empty")
    try:
        if size < GC_PAUSE_BYTES:
            return _unpack(payload, limits)
        with gc_paused():
            return _unpack(payload, limits)
    except ProtocolError:
        raise
    except msgpack.ExtraData:
        raise ProtocolError(MALFORMED, "payload", size, "has bytes after the msgpack object") from None
    except msgpack.StackError:
        raise ProtocolError(MALFORMED, "payload", size, "is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ProtocolError(MALFORMED, "payload", exc.object[exc.start:exc.start + 8],
                            "contains a text that is not valid UTF-8") from None
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError, MemoryError) as exc:
        raise ProtocolError(MALFORMED, "payload", size,
                            "is not valid msgpack: %s" % (exc or type(exc).__name__)) from None


def _unpack(payload: bytes, limits: Limits) -> Any:
    budget = _Budget(limits.max_total_items)
    return msgpack.unpackb(
        payload, raw=False, strict_map_key=True, use_list=True,
        object_pairs_hook=budget.pairs, list_hook=budget.items,
        max_bin_len=0, max_ext_len=0,
        max_str_len=limits.max_str_bytes,
        max_array_len=limits.max_items, max_map_len=limits.max_items,
    )


def check_envelope(obj: Any, site_id: Optional[str], size: int = 0,
                   allowed_types: Optional[Iterable[str]] = None) -> Envelope:
    """Check the envelope fields of a decoded object and wrap it."""
    if not isinstance(obj, dict):
        raise ProtocolError(MALFORMED, "envelope", type(obj).__name__, "must be a map")
    ref_type = obj.get("type") if isinstance(obj.get("type"), str) else None
    ref_id = obj.get("id") if _is_id(obj.get("id")) else None

    def fail(code: str, field: str, value: Any, message: str) -> ProtocolError:
        return ProtocolError(code, field, value, message, ref_type, ref_id)

    # The schema version first: a newer schema may legitimately change everything else.
    if "v" not in obj:
        raise fail(SCHEMA, "envelope.v", None, "is missing")
    v = obj["v"]
    if v != SCHEMA_VERSION or isinstance(v, bool) or not isinstance(v, int):
        raise fail(SCHEMA, "envelope.v", v, "schema version %d is the only one supported" % SCHEMA_VERSION)
    # Envelope fields this version does not know are ignored: within a schema version
    # new fields are optional by rule (docs/cloud-protocol.md, "Compatibility").
    for key in _ENVELOPE_KEYS:
        if key not in obj:
            raise fail(INVALID, "envelope.%s" % key, None, "is missing")
    if ref_type is None:
        raise fail(INVALID, "envelope.type", obj["type"], "must be a text")
    if allowed_types is not None and ref_type not in allowed_types:
        raise fail(UNKNOWN_TYPE, "envelope.type", ref_type, "is not a type this receiver accepts")
    if ref_id is None:
        raise fail(INVALID, "envelope.id", obj["id"], "must be a text of 1 to 64 characters")
    site = obj["site"]
    if not isinstance(site, str):
        raise fail(INVALID, "envelope.site", site, "must be a text")
    if site_id is not None and site != site_id:
        raise fail(WRONG_SITE, "envelope.site", site, "is not this site (%s)" % site_id)
    at_s = obj["at_s"]
    if isinstance(at_s, bool) or not isinstance(at_s, int) or not 0 <= at_s < 2 ** 40:
        raise fail(INVALID, "envelope.at_s", at_s, "must be UTC epoch seconds")
    body = obj["body"]
    if not isinstance(body, dict):
        raise fail(INVALID, "envelope.body", body, "must be a map")
    return Envelope(v, ref_type, ref_id, site, at_s, body, size)


def decode_envelope(payload: bytes, max_bytes: int, site_id: Optional[str],
                    limits: Limits = DEFAULT_LIMITS,
                    allowed_types: Optional[Iterable[str]] = None) -> Envelope:
    """Size check, strict decode and envelope check in one step."""
    obj = decode_payload(payload, max_bytes, limits)
    return check_envelope(obj, site_id, len(payload), allowed_types)


def encode_envelope(msg_type: str, msg_id: str, site_id: str, at_s: int, body: dict) -> bytes:
    return encode({"v": SCHEMA_VERSION, "type": msg_type, "id": msg_id,
                   "site": site_id, "at_s": int(at_s), "body": body})


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64


# -- upstream record batches, assembled from already-packed bodies -----------------

def records_message_header(msg_id: str, site_id: str, at_s: int, count: int) -> bytes:
    """Packed bytes of a ``records`` envelope up to the records array header.

    The outbox keeps every body packed, so a batch is a concatenation of packed pieces:
    no decode and re-encode of thousands of records while draining a backlog.
    """
    p = msgpack.Packer(use_bin_type=True)
    head = p.pack_map_header(6)
    for key, value in (("v", SCHEMA_VERSION), ("type", "records"), ("id", msg_id),
                       ("site", site_id), ("at_s", int(at_s))):
        head += p.pack(key) + p.pack(value)
    head += p.pack("body") + p.pack_map_header(1) + p.pack("records") + p.pack_array_header(count)
    return head


def packed_record(record_id: str, kind: str, key: str, at_s: int, packed_body: bytes) -> bytes:
    p = msgpack.Packer(use_bin_type=True)
    return (p.pack_map_header(5) + p.pack("id") + p.pack(record_id) + p.pack("kind") + p.pack(kind)
            + p.pack("key") + p.pack(key) + p.pack("at_s") + p.pack(int(at_s))
            + p.pack("body") + bytes(packed_body))
