"""The edge service: store, lists, OCPP gateway, meters, allocation and cloud, wired.

One asyncio loop. The control step reads the grid meter and the live sessions (in
memory), runs the allocation and hands the limits to the gateway, which sends only
what a wallbox does not have yet. It runs when a new grid reading arrives, when a
session starts or ends, and on the ``control.interval_s`` floor when readings stop
(edge/control_trigger.py). The cloud link and the meter poller run beside it; a
failure in one never stops the others (the allocation then sees a stale meter and
goes fail-safe, or the sessions queue in the outbox until the cloud is back).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from edge import authorizer as authorizer_mod
from edge import gc_epochs, heap
from edge.cloud.upstream import telemetry_sample
from edge.config import EdgeConfig
from edge.control_trigger import StepTrigger
from edge.core.allocation import Allocation, allocate
from edge.core.alloc_state import AllocState
from edge.core.circuits import circuits_from_site
from edge.event_log import EventLog
from edge.lists_holder import ListsHolder
from edge.meters.poller import MeterPoller
from edge.ocpp_gateway.server import Gateway
from edge.store.db import open_db
from edge.store.lists import ListsStore
from edge.store.outbox import Outbox
from edge.store.retention import RetentionWorker
from edge.store.sessions import SessionStore
from edge.store.space import MB, SpaceFloor

log = logging.getLogger(__name__)


def _station_entry(sid: str, st: dict) -> dict:
    """One station of the `status` body, from the gateway's ``Station.status()``."""
    errors = st.get("connector_errors", {})
    return {"id": sid, "connected": bool(st["connected"]),
            "protocol": {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}.get(st.get("version"), st.get("version")),
            "connectors": [{"id": int(cid), "status": status, "error": errors.get(cid)}
                           for cid, status in sorted(st.get("connectors", {}).items())]}


def _floor_s(cfg: EdgeConfig) -> float:
    """The step's floor: ``control.interval_s``, but at least two polls of the grid meter,
    so it only comes round when readings stop (never racing a reading due now)."""
    polled = [m.interval_s for m in cfg.meters if m.id == cfg.grid_meter and m.source != "node"]
    return max([cfg.interval_s] + [2 * p for p in polled])


class EdgeService:
    def __init__(self, cfg: EdgeConfig, *, clock: Callable[[], float] = time.time,
                 meter_link_factory: Any = None,
                 disk_free: Callable[[str], int] | None = None, freeze_gc: bool = False) -> None:
        self.cfg = cfg
        self._freeze_gc = freeze_gc
        self._gc_task: asyncio.Task | None = None
        self.trigger = StepTrigger(_floor_s(cfg), clock=clock)
        self.clock = clock
        self._disk_free = disk_free          # free bytes of a directory's disk (tests inject)
        self._meter_link_factory = meter_link_factory
        self.site = cfg.site
        self.tree = circuits_from_site(cfg.site)
        self.alloc_state = AllocState()
        self.last: Allocation | None = None
        self.cycles = 0
        self.cloud: Any = None
        self.ocpp_port: int | None = None
        self._task: asyncio.Task | None = None
        self._heap_task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._last_telemetry_s = 0.0
        self._listeners: list[Callable[["EdgeService"], None]] = []
        self._notes: set[str] = set()                # input problems already logged
        self.retention: RetentionWorker | None = None
        # The local window (edge.web): recent events, the last step's duration, the server.
        self.events = EventLog(cfg.http.events_kept if cfg.http is not None else 200)
        self.last_step_s: float | None = None
        self._seen_link: tuple = (None, None)        # (cloud online, external cap) last told as events
        self.web: Any = None
        self.http_port: int | None = None
        self.space: SpaceFloor | None = None
        self._alarm_shown = False                   # storage_low as last put in the event log
        self._alarm_sent = False                    # ... and as last queued for the cloud

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.cfg
        now = int(self.clock())
        self.conn = open_db(cfg.store_path)
        self.space = self._space_floor()
        # the outbox's early warning comes well before the floor refuses new sessions
        self.outbox = Outbox(self.conn, clock=self.clock,
                             warn_free_bytes=max(200 * MB, 2 * cfg.min_free_mb * MB))
        self.lists_store = ListsStore(self.conn)
        book = self.lists_store.load_book(self.site, now)
        self.lists = ListsHolder(self.site, book, online=self._cloud_online, clock=self.clock)
        log.info("lists version %s loaded from the store", self.lists.version)
        self.sessions = SessionStore(self.conn, outbox=self.outbox, clock=self.clock)
        self.sessions.sample_every_s = cfg.retention.sample_every_s
        self.retention = self._start_retention()
        self.authorizer = authorizer_mod.from_config(self.lists, self.conn, cfg.cloud, self.clock)
        self.gateway = Gateway(self.site, cfg.ocpp.stations, self.lists, self.sessions,
                               authorizer=self.authorizer, space=self.space,
                               clock=self.clock, on_event=self._on_gateway_event,
                               meter_interval_s=cfg.ocpp.meter_interval_s,
                               heartbeat_s=cfg.ocpp.heartbeat_s)
        self.ocpp_port = await self.gateway.start(cfg.ocpp.host, cfg.ocpp.port, cfg.ocpp.ssl_context())
        kwargs = {"clock": self.clock}
        if self._meter_link_factory is not None:
            kwargs["link_factory"] = self._meter_link_factory
        self.poller = MeterPoller(cfg.meters, **kwargs)
        # a grid reading wakes the control step, ours or a meter node's (both come here)
        self.poller.subscribe(self._on_reading)
        await self.poller.start()
        self.node_source = None
        if cfg.nodes is not None:
            # Meters read by meter nodes: their registers arrive over the site's broker.
            from edge.meters.node_source import NodeSource
            self.node_source = NodeSource(cfg.nodes, cfg.meters, self.poller, clock=self.clock,
                                          site_id=self.site.site_id)
            await self.node_source.start()
        if cfg.cloud is not None:
            from edge.cloud.mqtt_link import CloudLink
            from edge.store.export_jobs import ExportJobs
            self.cloud = CloudLink(cfg.cloud, self.site.site_id, self.lists, self.outbox,
                                   self.lists_store, on_command=self._on_command, clock=self.clock,
                                   sessions=self.sessions, export_jobs=ExportJobs(self.conn))
            authorizer_mod.connect(self.authorizer, self.cloud)
            self.cloud.publish_status(self.station_status_list())   # the table; sent on connect
            await self.cloud.start()
        self._task = asyncio.get_running_loop().create_task(self._control_loop(), name="control")
        self._heap_task = asyncio.get_running_loop().create_task(heap.trim_forever(),
                                                                 name="heap trim")
        if cfg.http is not None:
            from edge.web.server import WebServer
            self.web = WebServer(self, cfg.http)
            self.http_port = await self.web.start()
        if self.space is not None:
            self.space.check()      # already below the floor at start: say so now
        log.info("edge %s running: OCPP on port %d, %d meter(s), cloud %s", self.site.site_id,
                 self.ocpp_port, len(cfg.meters), "configured" if self.cloud else "off")
        if self._freeze_gc:
            # short full collections on a big site (edge/gc_epochs.py)
            gc_epochs.refreeze()
            self._gc_task = asyncio.get_running_loop().create_task(
                gc_epochs.run(self.gateway.all_connected), name="gc-epochs")

    async def stop(self) -> None:
        self._stopping.set()
        if self._gc_task is not None:
            self._gc_task.cancel()
        if self._heap_task is not None:
            self._heap_task.cancel()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self.web is not None:
            await self.web.stop()
        # Cloud first, so its last words still go out; then stations, meters, store.
        if self.cloud is not None:
            await self.cloud.stop()
        await self.gateway.stop()
        if self.node_source is not None:
            await self.node_source.stop()
        await self.poller.stop()
        if self.retention is not None:
            await asyncio.to_thread(self.retention.stop)
        self.conn.close()

    def _start_retention(self) -> RetentionWorker | None:
        """Prunes acknowledged old sessions on its own thread (edge/store/retention.py)."""
        if str(self.cfg.store_path) == ":memory:":
            return None
        worker = RetentionWorker(self.cfg.store_path, self.cfg.retention, clock=self.clock)
        worker.start()
        return worker

    def _space_floor(self) -> SpaceFloor | None:
        """The free-space floor (edge/store/space.py); its alarm goes to the event log
        and, as a durable record, to the cloud (docs/cloud-protocol.md, `alarm`)."""
        if str(self.cfg.store_path) == ":memory:" or self.cfg.min_free_mb <= 0:
            return None
        space = SpaceFloor(self.cfg.store_path, self.cfg.min_free_mb * MB, clock=self.clock,
                           probe=self._disk_free)
        space.subscribe(self._on_space)
        return space

    def _on_space(self, state: dict) -> None:
        low = bool(state["low"])
        body = {"code": "storage_low", "active": low, "since_s": state["since_s"],
                "free_bytes": state["free_bytes"], "floor_bytes": state["floor_bytes"]}
        if low != self._alarm_shown:
            self._alarm_shown = low
            self.events.add(self.clock(), "alarm", body)
        if low == self._alarm_sent:
            return
        try:
            # durable: the cloud learns it even if the link is down right now; the
            # floor keeps room for this record
            self.outbox.enqueue("alarm", "storage_low", body)
        except Exception as exc:        # tried again at the next read of the free space
            log.debug("alarm record not stored yet: %s", exc)
            return
        self._alarm_sent = low
        if self.cloud is not None:
            self.cloud.notify_outbox()

    def on_cycle(self, callback: Callable[["EdgeService"], None]) -> None:
        """Called after every control step (the live display of `make run`)."""
        self._listeners.append(callback)

    # -- the control step -------------------------------------------------------------------
    async def step(self) -> Allocation:
        t0 = time.perf_counter()
        now = self.clock()
        meter = self.poller.latest(self.cfg.grid_meter) if self.cfg.grid_meter else None
        site_limit = self.cloud.handler.site_limit(now) if self.cloud is not None else None
        # Let waiting OCPP work run between the parts of a step: at 1,000 sessions each
        # part is a millisecond or two, the whole several times that (bench_loop).
        live = await self.gateway.live_sessions_yielding()
        await asyncio.sleep(0)
        result = allocate(self.tree, live, meter, now, self.alloc_state, self.cfg.alloc,
                          site_limit)
        self.alloc_state = result.state
        if self.last is None or result.status["mode"] != self.last.status["mode"]:
            level = logging.WARNING if result.status["mode"] != "normal" else logging.INFO
            log.log(level, "allocation mode %s (%s)", result.status["mode"], result.status["reason"])
            self.events.add(now, "allocation_mode", {"mode": result.status["mode"], "reason": result.status["reason"]})
        self._log_notes(result.status.get("notes") or [])
        self._note_link(now, site_limit)
        self.last = result
        self.cycles += 1
        # All limits, not only result.changed: the allocation dedups per connector, but a
        # profile belongs to a transaction, and a new transaction at an unchanged limit
        # still needs its own. The gateway skips what each transaction already has.
        await asyncio.sleep(0)
        await self.gateway.apply_limits(result.limits)
        if self.cloud is not None and now - self._last_telemetry_s >= self.cfg.telemetry_every_s:
            self._last_telemetry_s = now
            self.cloud.publish_telemetry(self.telemetry(result, live))
        self.last_step_s = time.perf_counter() - t0
        for cb in self._listeners:
            cb(self)
        return result

    def _note_link(self, now: float, site_limit: dict | None) -> None:
        """The cloud link going up or down and an external cap starting or ending, as
        events for people (the local API); checked each step, recorded on change only."""
        online = self._cloud_online() if self.cloud is not None else None
        cap = site_limit.get("max_da") if site_limit else None
        was_online, was_cap = self._seen_link
        if online != was_online and online is not None:
            self.events.add(now, "cloud_link", {"online": online})
        if cap != was_cap:
            self.events.add(now, "external_limit", {"max_da": cap,
                                                    "expires_s": site_limit.get("expires_s") if site_limit else None})
        self._seen_link = (online, cap)

    def _log_notes(self, notes: list[str]) -> None:
        """Bad inputs the allocation worked around: logged once per incident, not per cycle."""
        current = set(notes)
        for note in sorted(current - self._notes):
            log.warning("allocation input refused (safe value used instead): %s", note)
        for note in sorted(self._notes - current):
            log.info("allocation input fixed: %s", note)
        self._notes = current

    async def _control_loop(self) -> None:
        async def guarded_step() -> None:
            try:
                await self.step()
            except Exception:
                # A bug in one cycle must not leave the wallboxes at their last limits forever
                # without a word: log it loudly and try again next cycle.
                log.exception("control step failed")
        await self.trigger.run(guarded_step, self._stopping)

    def _on_reading(self, reading: Any) -> None:
        if reading.meter_id == self.cfg.grid_meter:
            self.trigger.reading(reading.at_s, self.cfg.alloc.meter_max_age_s)

    def telemetry(self, result: Allocation, live: list[dict] | None = None) -> dict:
        """The `telemetry` body of docs/cloud-protocol.md: what was decided, and from what
        (``live``: the sessions that step allocated, so none is built twice)."""
        meter = self.poller.latest(self.cfg.grid_meter) if self.cfg.grid_meter else None
        return telemetry_sample(result, meter,
                                live if live is not None else self.gateway.live_sessions())

    # -- events from the adapters -------------------------------------------------------
    def _cloud_online(self) -> bool:
        return bool(self.cloud is not None and self.cloud.online)

    def _on_gateway_event(self, name: str, body: dict) -> None:
        self.events.add(self.clock(), name, body)
        if name in ("session_started", "session_stopped"):
            self.trigger.session_changed()
            if self.cloud is not None:
                self.cloud.notify_outbox()
        if name in ("station_connected", "status") and self.cloud is not None:
            # Only this station's entry: the link coalesces changes into status deltas.
            st = self.gateway.station_status_of(body["station"])
            if st is not None:
                self.cloud.station_changed(_station_entry(body["station"], st))

    def station_status_list(self) -> list[dict]:
        """The `status` body's stations (docs/cloud-protocol.md)."""
        return [_station_entry(sid, st) for sid, st in sorted(self.gateway.station_status().items())]

    async def _on_command(self, command: dict) -> dict:
        if command["type"] == "remote_start":
            r = await self.gateway.remote_start(command["station"], command["connector"],
                                                command["payment_ref"], command.get("group_id"))
            return {"status": "accepted" if r["accepted"] else "rejected", "reason": r["reason"],
                    "session_id": None}
        if command["type"] == "remote_stop":
            ok = await self.gateway.remote_stop(command["session_id"])
            return {"status": "accepted" if ok else "rejected",
                    "reason": "accepted" if ok else "unknown_session", "session_id": command["session_id"]}
        return {"status": "rejected", "reason": "invalid", "session_id": None}
