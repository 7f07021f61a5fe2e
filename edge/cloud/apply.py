"""Downstream handling: every message from the cloud goes through ``DownstreamHandler.handle``.

Lists (snapshot, delta) are applied all or nothing: the payload is decoded strictly,
validated completely by the domain core into a new book, stored in one SQLite
transaction, and only after the commit swapped into the lists holder. Any refusal leaves
the previous lists in force and queues an ``error`` record in the outbox (durable, so
the cloud learns of it even after an offline period); a refused delta also asks for a
snapshot. Commands and site limits are validated here and handed back to the transport,
which drives the gateway and the allocation. ``handle`` never raises on bad input.
"""
from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any, Callable, List, Optional, Tuple

from edge.cloud import codec, messages
from edge.cloud.codec import (GROUP_ARCHIVED, GROUP_IN_USE, INTERNAL, INVALID, STALE_VERSION,
                              TOO_LARGE, VERSION_MISMATCH, WRONG_TOPIC, Limits, ProtocolError)
from edge.core.errors import GroupArchived, ValidationError, VersionMismatch
from edge.store.references import groups_in_use
from edge.store.lists import FORM_ENVELOPE

log = logging.getLogger(__name__)

# outcomes
APPLIED = "applied"
DUPLICATE = "duplicate"
REFUSED = "refused"
COMMAND = "command"
SITE_LIMIT = "site_limit"
STATUS_REQUEST = "status_request"
ACK = "ack"
AUTH_REPLY = "auth_reply"

Publish = Tuple[str, bytes, bool]   # topic, payload, retain


class Handled:
    """What one downstream message led to.

    ``publish``: messages the transport must publish now (snapshot request, command
    reply for a refused command). ``command``: a validated remote_start/remote_stop body
    with ``"type"`` added, for the transport's ``on_command`` (for ``STATUS_REQUEST``:
    the validated status_request body). ``site_limit``: the
    validated limit for ``on_site_limit``. ``error``: the ProtocolError of a refusal.
    """

    __slots__ = ("type", "msg_id", "outcome", "command", "site_limit", "acked", "error",
                 "publish", "version", "reply")

    def __init__(self, outcome: str, msg_type: Optional[str] = None, msg_id: Optional[str] = None) -> None:
        self.outcome = outcome
        self.type = msg_type
        self.msg_id = msg_id
        self.command = None  # type: Optional[dict]
        self.site_limit = None  # type: Optional[dict]
        self.acked = 0
        self.error = None  # type: Optional[ProtocolError]
        self.publish = []  # type: List[Publish]
        self.version = None  # type: Optional[int]
        self.reply = None  # type: Optional[dict]   # a validated auth_reply body

    def __repr__(self) -> str:
        return "Handled(%s, type=%r, id=%r, error=%r)" % (self.outcome, self.type, self.msg_id,
                                                           str(self.error) if self.error else None)


class DownstreamHandler:
    """Parses, validates and applies downstream messages of one site.

    ``lists``: the ListsHolder (``.book``, ``.version``, ``.replace``); ``lists_store``:
    ``edge.store.lists.ListsStore``; ``outbox``: ``edge.store.outbox.Outbox``;
    ``on_ack(ids)``: the batcher's ack handler (default: ``outbox.ack``).
    Error records are rate limited (``max_error_records`` per ``error_window_s``) so a
    flood of garbage cannot fill the disk; refusals beyond that are only logged.
    """

    def __init__(self, site: Any, site_id: str, lists: Any, lists_store: Any, outbox: Any, *,
                 clock: Callable[[], float] = time.time, limits: Limits = codec.DEFAULT_LIMITS,
                 ids: Optional[Callable[[], str]] = None,
                 on_ack: Optional[Callable[[List[str]], int]] = None,
                 max_error_records: int = 30, error_window_s: float = 60.0) -> None:
        self.site = site
        self.site_id = messages.check_site_id(site_id)
        self.lists = lists
        self.lists_store = lists_store
        self.outbox = outbox
        self._clock = clock
        self.limits = limits
        self._ids = ids or messages.MessageIds()
        self._on_ack = on_ack or outbox.ack
        self._max_errors = max_error_records
        self._error_window_s = error_window_s
        self._error_window_start = None  # type: Optional[float]
        self._errors_in_window = 0
        self.dropped_error_records = 0
        self._site_limit = lists_store.load_site_limit()

    # -- entry point ---------------------------------------------------------------------------
    def handle(self, topic: str, payload: bytes) -> Handled:
        try:
            return self._handle(topic, payload)
        except ProtocolError as err:
            return self._refuse(err, payload)
        except (sqlite3.Error, OSError) as exc:
            # The store refused the write (disk full, I/O error): the transaction was
            # rolled back and the holder not touched, so the old lists stay in force.
            log.error("could not store downstream message: %s", exc)
            return self._refuse(ProtocolError(INTERNAL, "store", str(exc), "the edge could not store it",
                                              *self._refs(payload)), payload)
        except Exception as exc:  # a bug must not take the cloud link down
            log.exception("downstream message handling failed")
            return self._refuse(ProtocolError(INTERNAL, "edge", type(exc).__name__,
                                              "the edge failed to handle it", *self._refs(payload)),
                                payload)

    def _refs(self, payload: Any) -> Tuple[Optional[str], Optional[str]]:
        try:
            env = codec.check_envelope(codec.decode_payload(payload, len(payload) + 1, self.limits), None)
            return env.type, env.id
        except Exception:
            return None, None

    def _handle(self, topic: str, payload: bytes) -> Handled:
        name = messages.down_topic_name(self.site_id, topic)
        if name is None:
            raise ProtocolError(WRONG_TOPIC, "topic", topic, "is not a downstream topic of this site")
        allowed = messages.types_on_down_topic(name)
        max_bytes = max(self.limits.for_type(t) for t in allowed)
        env = codec.decode_envelope(payload, max_bytes, self.site_id, self.limits)
        if env.type not in messages.DOWN_TOPIC_OF:
            raise ProtocolError(codec.UNKNOWN_TYPE, "envelope.type", env.type,
                                "is not a downstream message type", env.type, env.id)
        if env.type not in allowed:
            raise ProtocolError(WRONG_TOPIC, "envelope.type", env.type,
                                "is not allowed on %s" % topic, env.type, env.id)
        if env.size > self.limits.for_type(env.type):
            raise ProtocolError(TOO_LARGE, "payload", env.size, "is larger than the %s limit of %d bytes"
                                % (env.type, self.limits.for_type(env.type)), env.type, env.id)
        now_s = int(self._clock())
        try:
            body = messages.DOWN_VALIDATORS[env.type](env.body, now_s)
        except ProtocolError as err:
            err.ref_type, err.ref_id = env.type, env.id
            raise
        if env.type == "snapshot":
            return self._apply_snapshot(env, body, payload, now_s)
        if env.type == "delta":
            return self._apply_delta(env, body, now_s)
        if env.type == "ack":
            done = Handled(ACK, env.type, env.id)
            done.acked = self._on_ack(body["ids"])
            return done
        if env.type == "site_limit":
            return self._accept_site_limit(env, body)
        if env.type == "auth_reply":
            done = Handled(AUTH_REPLY, env.type, env.id)
            done.reply = body
            return done
        if env.type == "status_request":
            done = Handled(STATUS_REQUEST, env.type, env.id)
            done.command = body
            return done
        done = Handled(COMMAND, env.type, env.id)
        command = dict(body)
        command["type"] = env.type
        done.command = command
        return done

    # -- lists ---------------------------------------------------------------------------------------
    def _apply_snapshot(self, env: codec.Envelope, body: dict, payload: bytes, now_s: int) -> Handled:
        version = body["version"]
        current = self.lists.version
        if version == current:
            log.debug("snapshot %s: version %d already applied", env.id, version)
            return Handled(DUPLICATE, env.type, env.id)
        if version < current:
            raise ProtocolError(STALE_VERSION, "body.version", version,
                                "is older than the applied version %d" % current, env.type, env.id)
        from edge.core.book import GroupBook
        previous = self.lists.book
        with codec.gc_paused():
            book = self._domain(lambda: GroupBook.from_snapshot(
                body, self.site, by="cloud:" + env.id, now_s=now_s, previous=previous), env)
        self._check_removals(previous, book, env, "groups")
        # The raw payload was fully validated: storing it as is avoids re-encoding.
        self.lists_store.save_snapshot(version, payload, FORM_ENVELOPE, now_s,
                                       history=book.history[len(previous.history):])
        self.lists.replace(book)
        log.info("cloud lists: snapshot %s applied, version %d", env.id, version)
        done = Handled(APPLIED, env.type, env.id)
        done.version = version
        return done

    def _apply_delta(self, env: codec.Envelope, delta: dict, now_s: int) -> Handled:
        current = self.lists.version
        if delta["version"] <= current:
            log.debug("delta %s: version %d already applied", env.id, delta["version"])
            return Handled(DUPLICATE, env.type, env.id)
        # Version 0 is the empty book of a site that never got a snapshot: a delta can
        # never be stored on it, so the cloud must send a snapshot first.
        if delta["base_version"] != current or current == 0:
            raise ProtocolError(VERSION_MISMATCH, "body.base_version", delta["base_version"],
                                "delta applies to version %d, edge has %d"
                                % (delta["base_version"], current), env.type, env.id)
        previous = self.lists.book
        book = self._domain(lambda: previous.apply_delta(delta, self.site, by="cloud:" + env.id,
                                                         now_s=now_s), env)
        self._check_removals(previous, book, env, "groups_remove")
        self.lists_store.record_delta(current, delta["version"], codec.encode(delta), book, now_s,
                                      history=book.history[len(previous.history):])
        self.lists.replace(book)
        log.info("cloud lists: delta %s applied, version %d -> %d", env.id, current, delta["version"])
        done = Handled(APPLIED, env.type, env.id)
        done.version = delta["version"]
        return done

    def _check_removals(self, previous: Any, book: Any, env: codec.Envelope, field: str) -> None:
        """All or nothing: lists that drop a group a running session or an unsent
        session record references are refused (archive it instead)."""
        gone = sorted(g.id for g in previous.groups() if book.group(g.id) is None)
        used = groups_in_use(self.outbox._conn, gone) if gone else {}
        if used:
            gid = sorted(used)[0]
            raise ProtocolError(GROUP_IN_USE, "body." + field, gid,
                                "group %s is referenced by %s: archive it instead of removing"
                                " it" % (gid, used[gid]), env.type, env.id)

    @staticmethod
    def _domain(build: Callable[[], Any], env: codec.Envelope) -> Any:
        try:
            return build()
        except GroupArchived as exc:
            raise ProtocolError(GROUP_ARCHIVED, "body." + str(exc.field), exc.value, exc.message,
                                env.type, env.id) from None
        except VersionMismatch as exc:
            raise ProtocolError(VERSION_MISMATCH, "body." + str(exc.field), exc.value, exc.message,
                                env.type, env.id) from None
        except ValidationError as exc:
            raise ProtocolError(INVALID, "body." + str(exc.field), exc.value, exc.message,
                                env.type, env.id) from None

    # -- site limit ------------------------------------------------------------------------------------
    def _accept_site_limit(self, env: codec.Envelope, body: dict) -> Handled:
        limit = None if body["max_da"] is None else body
        self.lists_store.save_site_limit(limit)
        self._site_limit = limit
        done = Handled(SITE_LIMIT, env.type, env.id)
        done.site_limit = body
        log.info("external site limit %s: %s", body["limit_id"],
                 "cleared" if limit is None else "%d dA until %d" % (body["max_da"], body["expires_s"]))
        return done

    def site_limit(self, now_s: Optional[float] = None) -> Optional[dict]:
        """The external site limit in force, None when there is none or it has expired."""
        limit = self._site_limit
        if limit is None:
            return None
        now = self._clock() if now_s is None else now_s
        if now >= limit["expires_s"]:
            log.info("external site limit %s expired", limit["limit_id"])
            self._site_limit = None
            self.lists_store.save_site_limit(None)
            return None
        return limit

    def external_limit_da(self, now_s: Optional[float] = None) -> Optional[int]:
        """The allocation's ``external_limit_da`` input now."""
        limit = self.site_limit(now_s)
        return None if limit is None else limit["max_da"]

    # -- start-up ---------------------------------------------------------------------------------------
    def startup_messages(self) -> List[Publish]:
        """What to publish after every connect besides ``online``: a snapshot request
        when this edge has no lists yet."""
        if self.lists.version:
            return []
        t, p = messages.snapshot_request(self.site_id, self._ids(), int(self._clock()), None, "no_lists")
        return [(t, p, False)]

    # -- refusals ---------------------------------------------------------------------------------------
    def _refuse(self, err: ProtocolError, payload: Any) -> Handled:
        done = Handled(REFUSED, err.ref_type, err.ref_id)
        done.error = err
        version = self.lists.version
        log.warning("refused downstream %s %s: [%s] %s", err.ref_type or "message", err.ref_id or "",
                    err.code, err)
        self._queue_error_record(err, version)
        now_s = int(self._clock())
        if err.ref_type == "delta":
            reason = "version_mismatch" if err.code == VERSION_MISMATCH else "delta_refused"
            t, p = messages.snapshot_request(self.site_id, self._ids(), now_s, version, reason, err.ref_id)
            done.publish.append((t, p, False))
        elif err.ref_type in messages.COMMAND_TYPES:
            request_id = _readable_request_id(payload, self.limits)
            if request_id is not None:
                reason = err.code if err.code in (codec.EXPIRED, INTERNAL) else INVALID
                t, p = messages.command_reply(self.site_id, self._ids(), now_s, request_id,
                                              err.ref_type, "rejected", reason)
                done.publish.append((t, p, False))
        return done

    def _queue_error_record(self, err: ProtocolError, version: Optional[int]) -> None:
        now = self._clock()
        if self._error_window_start is None or now - self._error_window_start >= self._error_window_s:
            self._error_window_start = now
            self._errors_in_window = 0
        if self._errors_in_window >= self._max_errors:
            self.dropped_error_records += 1
            return
        self._errors_in_window += 1
        try:
            self.outbox.enqueue("error", err.ref_id or "-", messages.error_record(err, version))
        except Exception:  # the refusal itself must not take the service down
            log.exception("could not queue the error record for a refused downstream message")


def _readable_request_id(payload: Any, limits: Limits) -> Optional[str]:
    # Only called after a refusal of a small command message: decoding again is cheap
    # and keeps the happy path free of this bookkeeping.
    try:
        obj = codec.decode_payload(payload, limits.other_down_bytes, limits)
        rid = obj["body"]["request_id"]
    except Exception:
        return None
    if isinstance(rid, str) and 0 < len(rid) <= 64 and all(" " < c != "\x7f" for c in rid):
        return rid
    return None
