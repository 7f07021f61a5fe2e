"""CloudLink: the edge's side of docs/cloud-protocol.md over MQTT.

It joins one ``MqttConnection`` (edge/cloud/mqtt_connection.py) to the protocol
modules: codec, messages, apply (downstream), batching (upstream). The outbox, the
lists store and SQLite are only touched from the asyncio loop thread.
The last will is the retained ``online: false`` envelope; a clean ``stop()`` publishes
the same itself, because a normal DISCONNECT suppresses the will.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, List, Optional, Union

import paho.mqtt.client as mqtt

from edge.cloud import apply, messages
from edge.cloud.auth_requests import AuthRequests
from edge.cloud.batching import UpstreamBatcher
from edge.cloud.mqtt_config import LinkConfig
from edge.cloud.mqtt_connection import MqttConnection
from edge.cloud.session_export import ExportAborted, SessionExporter
from edge.cloud.upstream import StatusStream, TelemetryStream, new_stream_id

log = logging.getLogger(__name__)


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
    ``sessions`` (the SessionStore) answers ``sessions_request`` commands; ``auth``
    asks the cloud about unknown tokens (edge/cloud/auth_requests.py).
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
        sessions: Any = None,
        export_jobs: Any = None,
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
        self.auth = AuthRequests(site_id, self._publish_question, clock=clock,
                                 max_in_flight=self.cfg.auth_max_in_flight,
                                 hold_s=max(self.cfg.auth_hold_s, self.cfg.auth_deadline_s))
        self.exporter = None if sessions is None else SessionExporter(
            site_id, sessions.records_between, self.connection.publish_tracked,
            lambda: self.connection.connected, clock=clock, ids=self._ids)
        stream = new_stream_id()
        self.status_stream = StatusStream(stream, self.cfg.status_every_s)
        self.telemetry_stream = TelemetryStream(stream, self.cfg.telemetry_heartbeat_s,
                                                self.cfg.telemetry_step_da,
                                                self.cfg.telemetry_grid_step_da)
        self._kick = asyncio.Event()
        self._drain_task: Optional[asyncio.Task] = None
        self._closing = False
        self._command_tasks: set = set()
        # request_id -> reply body (None while running): QoS 1 may deliver a command
        # twice, and a wallbox must not be started twice for one payment.
        self._commands: "OrderedDict[str, Optional[dict]]" = OrderedDict()
        self.records_sent = 0
        # Unfinished sessions_request exports (edge/store/export_jobs.py), resumed at
        # every connect; None: an export cut short is answered export_aborted.
        self.export_jobs = export_jobs if self.exporter is not None else None
        self._exports_running: set = set()
        self._exports_paused: set = set()

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
        self.auth.cancel_all()
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
        """The whole station table: sent as a full status now if online (True), and
        after every connect."""
        self.status_stream.replace_all(stations)
        if not self.connection.connected:
            return False
        return self._publish_status(self.status_stream.full(self._clock()))

    def station_changed(self, entry: dict) -> None:
        """One station's entry changed: goes up with others in the next status delta."""
        if self.status_stream.update(entry):
            due = self.status_stream.due_at()
            if due is not None and due <= self._clock():
                self._kick.set()

    def publish_telemetry(self, sample: dict) -> bool:
        """A telemetry sample; True when it went up. Dropped while offline (only the
        latest matters), suppressed when nothing moved beyond the deadbands."""
        if not self.connection.connected:
            return False
        body = self.telemetry_stream.offer(sample, self._clock())
        if body is None:
            return False
        if not self._publish(*messages.telemetry(self.site_id, self._ids(), self._now(), body)):
            self.telemetry_stream.reset()
            return False
        return True

    def flush_upstream(self) -> int:
        """Publishes the status delta (or requested full status) due now; the drain loop
        calls it, and so can a caller that drives the clock itself."""
        if not self.connection.connected:
            return 0
        body = self.status_stream.take(self._clock())
        if body is None:
            return 0
        return 1 if self._publish_status(body) else 0

    def _publish_status(self, body: dict) -> bool:
        # The full table is retained (a cloud subscribing later starts from it); deltas
        # are not, so they never replace it. A lost one makes the next message full.
        ok = self._publish(*messages.status(self.site_id, self._ids(), self._now(), body),
                           retain=body["full"])
        if not ok:
            self.status_stream.request_full()
        return ok

    def external_limit_da(self, now_s: Optional[float] = None) -> Optional[int]:
        """The cloud's site limit now (None when none or expired), for the allocation."""
        return self.handler.external_limit_da(now_s)

    # ---- internals ----
    def _now(self) -> int:
        return int(self._clock())

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        return self.connection.publish(topic, payload, retain)

    def _publish_question(self, topic: str, payload: bytes) -> bool:
        # QoS 0: an unanswered question is worth nothing after its deadline, and without
        # the broker's PUBACK on this socket its answer is not held back by Nagle's
        # algorithm waiting for a delayed TCP ACK (~40 ms per round trip).
        return self.connection.publish(topic, payload, qos=0)

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
        # The cloud may have missed anything while we were away: whole status now, whole
        # telemetry with the next sample.
        self._publish_status(self.status_stream.full(self._clock()))
        self.telemetry_stream.reset()
        # Everything unacknowledged is due again; the cloud drops duplicates by id.
        self.batcher.on_connect()
        self._kick.set()
        self._resume_exports()

    def _resume_exports(self) -> None:
        if self.export_jobs is None:
            return
        try:
            jobs = self.export_jobs.pending(self._now())
        except Exception:
            log.exception("sessions on request: the unfinished exports cannot be read")
            return
        # A paused export whose job is gone (too old) no longer blocks its request id.
        for rid in self._exports_paused - {job.request_id for job in jobs}:
            if self._commands.get(rid, "") is None:
                del self._commands[rid]
        self._exports_paused.clear()
        for job in jobs:
            rid = job.request_id
            if rid in self._exports_running:
                continue
            log.info("sessions_request %s: resuming after part %d (%d records sent)", rid, job.part, job.sent)
            self._commands[rid] = None
            task = asyncio.get_running_loop().create_task(self._run_command(job.request, job))
            self._command_tasks.add(task)
            task.add_done_callback(self._command_tasks.discard)

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
        elif done.outcome == apply.AUTH_REPLY:
            self.auth.on_reply(done.reply)
        elif done.outcome == apply.STATUS_REQUEST:
            log.info("cloud asks for the full status (%s, request %s)", done.command["reason"],
                     done.command["request_id"])
            self.status_stream.request_full(done.command["request_id"])
            self.telemetry_stream.request_full()
            self._kick.set()
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

    async def _run_command(self, command: dict, job: Any = None) -> None:
        rid, kind = command["request_id"], command["type"]
        status, reason, session_id = "failed", "internal_error", None
        try:
            if kind == "sessions_request":
                status, reason = await self._export_sessions(command, job)
                if status is None:      # resumes at the next connect, or runs elsewhere
                    return
            else:
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

    async def _export_sessions(self, command: dict, job: Any = None) -> "tuple[Optional[str], str]":
        """Sessions on request (edge/cloud/session_export.py); the reply follows the
        last part, so the cloud knows the export is complete. With the job store an
        export cut by a lost link or a restart goes on at the next connect: (None, "")
        means no reply now."""
        if self.exporter is None:
            return "rejected", "unsupported"
        rid = command["request_id"]
        jobs = self.export_jobs
        if rid in self._exports_running:
            return None, ""             # the same request again while it runs
        if jobs is not None and job is None:
            job = jobs.begin(command, self._now())
            if job is None:
                log.warning("sessions_request %s refused: %d exports are unfinished", rid, jobs.max_jobs)
                return "failed", "busy"
        self._exports_running.add(rid)
        try:
            await self.exporter.run(command, job, jobs)
        except ExportAborted as exc:
            if jobs is not None and exc.link_lost:
                log.info("sessions_request %s paused (%s); it resumes at the next connect", rid, exc)
                self._exports_paused.add(rid)
                return None, ""
            log.warning("sessions_request %s aborted: %s", rid, exc)
            if jobs is not None:
                jobs.finish(rid)
            return "failed", "export_aborted"
        except Exception:
            if jobs is not None:        # a broken store: answered internal_error, not retried
                jobs.finish(rid)
            raise
        finally:
            self._exports_running.discard(rid)
        if jobs is not None:
            jobs.finish(rid)
        return "accepted", "accepted"

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
            wait_s = self.cfg.drain_poll_s
            due = self.status_stream.due_at()
            if due is not None:
                wait_s = min(wait_s, max(0.0, due - self._clock()))
            try:
                await asyncio.wait_for(self._kick.wait(), wait_s)
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
            try:
                self.flush_upstream()
            except Exception:
                log.exception("sending the station status failed; retrying at the next poll")


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
