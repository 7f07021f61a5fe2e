"""The OCPP server for the site's wallboxes (1.6J and 2.0.1 side by side).

Admission happens in the HTTP handshake (auth.py). Each accepted connection gets a
version-specific translator (v16/, v201/) driven by a strict reader loop (link.py).
What wallboxes report goes to logic.Logic; what the edge wants from wallboxes
(limits, remote start/stop, local lists, settings) goes out through the translator's
outgoing methods, which have the same names in both versions.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from http import HTTPStatus
from typing import Any, Callable

import websockets
from websockets.asyncio.server import serve

from edge.core.authorize import PRIORITISED_CHARGING_PRIORITY
from edge.core.errors import ValidationError
from edge.ocpp_gateway import (auth, framing, limit_sender, list_sync, peer_text, profiles,
                                refusal)
from edge.ocpp_gateway.link import Link, TokenBucket
from edge.ocpp_gateway.logic import Logic
from edge.ocpp_gateway.pacing import TurnPacer
from edge.ocpp_gateway.station import MAX_PENDING_REMOTE, StationState
from edge.ocpp_gateway.v16.handlers import StationV16
from edge.ocpp_gateway.v201.handlers import StationV201

log = logging.getLogger(__name__)

_WIRE_VERSIONS = {"1.6": "ocpp1.6", "ocpp1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1",
                  "ocpp2.0.1": "ocpp2.0.1"}
MEASURANDS = "Energy.Active.Import.Register,Current.Import"
ENERGY_REGISTER = "Energy.Active.Import.Register"


def _check_stations_cfg(site: Any, stations_cfg: Any) -> dict[str, dict]:
    if not isinstance(stations_cfg, dict):
        raise ValidationError("stations", stations_cfg, "must be a mapping of station id")
    out = {}
    for sid, cfg in stations_cfg.items():
        f = "stations.%s" % sid
        if site.station(sid) is None:
            raise ValidationError(f, sid, "station is not in the site's charging groups")
        if not isinstance(cfg, dict):
            raise ValidationError(f, cfg, "must be a mapping")
        pw = cfg.get("password")
        if pw is not None and (not isinstance(pw, str) or not 1 <= len(pw) <= 40):
            # OCPP security profile 1: the password is at most 40 characters
            raise ValidationError(f + ".password", "***", "must be a string of 1..40 characters")
        versions = cfg.get("ocpp_versions", ["1.6", "2.0.1"])
        if not isinstance(versions, list) or not versions:
            raise ValidationError(f + ".ocpp_versions", versions, "must be a non-empty list")
        wire = []
        for i, v in enumerate(versions):
            if v not in _WIRE_VERSIONS:
                raise ValidationError("%s.ocpp_versions[%d]" % (f, i), v,
                                      "must be \"1.6\" or \"2.0.1\"")
            wire.append(_WIRE_VERSIONS[v])
        out[sid] = {"password": pw, "subprotocols": wire}
    return out


class Gateway:
    def __init__(self, site: Any, stations_cfg: dict, lists: Any, sessions: Any,
                 clock: Callable[[], float] = time.time,
                 on_event: Callable[[str, dict], Any] | None = None, *,
                 heartbeat_s: int = 300, meter_interval_s: int = 30,
                 response_timeout_s: float = 30.0, default_list_max: int = 25,
                 profile_timeout_s: float = 10.0, apply_wait_s: float = 2.0,
                 sample_flush_s: float = 5.0,
                 remote_start_ttl_s: int = 300,
                 rate_per_s: float = 20.0, burst: int = 200,
                 startup_per_turn: int = 1,
                 throttle: auth.FailureThrottle | None = None,
                 ids: Callable[[], str] = lambda: uuid.uuid4().hex,
                 authorizer: Any = None, space: Any = None) -> None:
        self.site = site
        self.cfg = _check_stations_cfg(site, stations_cfg)
        self.lists = lists
        self.sessions = sessions
        self.clock = clock
        self.on_event = on_event
        self.heartbeat_s = int(heartbeat_s)
        self.meter_interval_s = int(meter_interval_s)
        self.response_timeout_s = response_timeout_s
        self.default_list_max = int(default_list_max)
        self.profile_timeout_s = profile_timeout_s
        self.apply_wait_s = apply_wait_s
        self.sample_flush_s = sample_flush_s
        self.remote_start_ttl_s = int(remote_start_ttl_s)
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.throttle = throttle or auth.FailureThrottle()
        # Handshakes, frames of starting wallboxes, after-boot calls and list pushes:
        # at most startup_per_turn pieces per event-loop turn (pacing.py says why).
        self.startup = TurnPacer(startup_per_turn)
        self.ids = ids
        # space: the free-space floor (edge/store/space.py); None: no floor
        self.logic = Logic(site, lists, sessions, clock, self._emit, authorizer, space)
        self.logic.remote_start_ttl_s = self.remote_start_ttl_s
        self.stations = {sid: StationState(sid, site.station(sid)) for sid in self.cfg}
        self._connectors = {(c.station_id, c.id): c for c in site.connectors()}
        self._fallback_da = profiles.fallback_limits_da(site)
        missing = [s.id for s in site.stations() if s.id not in self.cfg]
        if missing:
            # allowed (a station not yet installed), but such a station is refused at the
            # handshake: say so once instead of once per refused connection attempt only
            log.warning("stations in the site but not in the OCPP configuration cannot"
                        " connect: %s", ", ".join(missing))
        self._locks = {sid: asyncio.Lock() for sid in self.cfg}
        self._tasks: set[asyncio.Task] = set()
        self._server: Any = None
        self._limits: dict[tuple, tuple] = {}
        self._limits_saw: dict[tuple, str] = {}   # key -> session running when decided
        self._inflight: dict[str, asyncio.Task] = {}
        self._running: set[tuple] = set()
        self._again: dict[tuple, Callable[[], Any]] = {}   # key -> the run asked for next
        self._unsubscribe = lists.subscribe(self._on_lists_changed)

    # -- lifecycle ------------------------------------------------------------------
    async def start(self, host: str, port: int, ssl: Any = None) -> int:
        """Listen; returns the actual port (``port`` 0 picks a free one)."""
        self._server = await serve(
            self._connection, host, port, ssl=ssl,
            subprotocols=["ocpp2.0.1", "ocpp1.6"],
            select_subprotocol=self._select_subprotocol,
            process_request=self._process_request,
            compression=None,         # ~14 KiB instead of ~64 KiB per connection
            max_size=65536, max_queue=8,
            ping_interval=60, ping_timeout=60)
        self.spawn(self._flush_samples_forever())
        actual = self._server.sockets[0].getsockname()[1]
        log.info("OCPP gateway listening on %s:%d%s", host, actual, " (TLS)" if ssl else "")
        return actual

    async def stop(self) -> None:
        self._unsubscribe()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            self.logic.write_held_stops()       # a last try: memory does not survive a stop
            self.sessions.flush_samples()
        except sqlite3.Error as exc:
            held = self.sessions.held_stops()
            log.warning("the store refused the last writes at shutdown (%s)%s", str(exc)[:120],
                        "; %d stop(s) lost here: their wallboxes send them again" % held
                        if held else "")
        except Exception:
            log.exception("writing meter samples at shutdown failed")

    async def _flush_samples_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sample_flush_s)
            try:
                if self.logic.space is not None:
                    self.logic.space.low()     # the floor's alarm also clears without starts
                # stops a failing store refused first: they carry a session's real end
                self.logic.write_held_stops()
                self.sessions.flush_samples()
            except sqlite3.Error:
                pass        # said once by the store; kept for the next try
            except Exception:
                log.exception("writing meter samples failed; kept for the next try")

    def spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def coalesce(self, st: StationState, what: str, make: Callable[[], Any]) -> None:
        """Run ``make()`` for a station, at most one running plus one queued.

        A wallbox flooding BootNotifications, or the cloud sending many list changes,
        must not pile up tasks: requests while one runs collapse into one more run, of
        the latest request (a reconnect's catch-up after a list change's sync, say).
        """
        key = (st.id, what)
        if key in self._running:
            self._again[key] = make
            return

        async def runner() -> None:
            job = make
            try:
                while True:
                    await job()
                    job = self._again.pop(key, None)
                    if job is None:
                        return
            finally:
                self._running.discard(key)
                self._again.pop(key, None)
        self._running.add(key)
        self.spawn(runner())

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway task failed", exc_info=task.exception())

    def _emit(self, name: str, body: dict) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(name, body)
        except Exception:  # a listener bug must not break the wallbox's answer
            log.exception("on_event listener failed for %s", name)

    # -- handshake ------------------------------------------------------------------
    async def _process_request(self, connection: Any, request: Any) -> Any:
        await self.startup.turn()
        peer = connection.remote_address[0] if connection.remote_address else None
        sid = auth.station_from_path(request.path)
        cfg = self.cfg.get(sid) if sid is not None else None
        if cfg is None:
            outcome = auth.UNKNOWN_STATION
        else:
            outcome = auth.check_basic(request.headers.get("Authorization"), sid,
                                       cfg["password"])
        if outcome == auth.OK:
            self.throttle.record_success(peer)
            return None
        delay = self.throttle.record_failure(peer)
        log.warning("refused OCPP handshake from %s for %s: %s (failure %d)", peer,
                    peer_text.quote(sid), outcome, self.throttle.failures(peer))
        if delay > 0:
            await asyncio.sleep(delay)
        if outcome == auth.UNKNOWN_STATION:
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charging station\n")
        resp = connection.respond(HTTPStatus.UNAUTHORIZED, "Authentication required\n")
        resp.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
        return resp

    def _select_subprotocol(self, connection: Any, offered: Any) -> Any:
        sid = auth.station_from_path(connection.request.path)
        allowed = self.cfg[sid]["subprotocols"] if sid in self.cfg else []
        for proto in ("ocpp2.0.1", "ocpp1.6"):
            if proto in allowed and proto in offered:
                return proto
        raise websockets.NegotiationError("no common OCPP version (offered %s)"
                                          % ", ".join(offered or ["none"]))

    async def _connection(self, ws: Any) -> None:
        sid = auth.station_from_path(ws.request.path)
        st = self.stations[sid]
        version = framing.SUBPROTOCOLS[ws.subprotocol]
        old = st.link
        link = Link(ws, st, version, TokenBucket(self.rate_per_s, self.burst),
                    on_resumed=lambda: self._resumed(st), clock=self.clock,
                    pace=self.startup.turn)
        cls = StationV16 if version == framing.V16 else StationV201
        link.cp = cls(st, link, self, self.response_timeout_s)
        link.cp._unique_id_generator = link.new_call_id
        st.link_seq += 1
        st.link = link
        if old is not None:
            # The newer connection wins: the old one is usually a half-open socket of a
            # wallbox that already reconnected.
            log.warning("station %s: new connection replaces the previous one", sid)
            self.spawn(old.ws.close(1000, "replaced by a new connection"))
        st.version = version
        st.peer = ws.remote_address[0] if ws.remote_address else None
        st.last_seen_s = st.connected_since_s = self.logic.now()
        log.info("station %s connected from %s (OCPP %s)", sid, st.peer, version)
        self._emit("station_connected", {"station": sid, "connected": True,
                                         "version": version})
        try:
            await link.run()
        except websockets.ConnectionClosed:
            pass
        finally:
            if st.link is link:
                st.link = None
                log.info("station %s disconnected", sid)
                self._emit("station_connected", {"station": sid, "connected": False,
                                                 "version": version})

    def _resumed(self, st: StationState) -> None:
        """A wallbox reconnected and talks without booting."""
        if st.booted:
            # It kept its settings and profiles; its local list may be behind.
            self.coalesce(st, "list", lambda: self._catch_up(st))
            return
        # Accepted before the edge (re)started: the edge knows nothing of its state.
        st.booted = True
        log.info("station %s resumed without BootNotification (edge restarted?)", st.id)
        self.coalesce(st, "boot", lambda: self.after_boot(st))

    # -- after boot: settings, station maximum, local list ---------------------------
    async def after_boot(self, st: StationState) -> None:
        link = st.link
        if link is None:
            return
        try:
            await self._after_boot(st, link)
        finally:
            link.starting = False     # its frames need not wait for their turn any more

    async def _after_boot(self, st: StationState, link: Link) -> None:
        cp = link.cp
        pace = self.startup.turn
        async with self._locks[st.id]:
            await pace()
            done = await self._step(st, "configure", cp.configure(
                {"meter_interval_s": self.meter_interval_s, "local_list_enabled": True,
                 "measurands": MEASURANDS, "start_stop_measurands": ENERGY_REGISTER,
                 "stop_on_invalid_id": True}))
            refused = sorted(k for k, v in (done or {}).items()
                             if v not in ("Accepted", "RebootRequired"))
            if refused:
                # the edge still works, but e.g. without per-phase currents the
                # allocation sees this wallbox as drawing its limit
                log.warning("station %s refused settings: %s", st.id,
                            ", ".join("%s=%s" % (k, done[k]) for k in refused))
            st.settings = dict(done or {})
            await pace()
            ok = await self._boot_profile(st, "station maximum profile",
                                          profiles.station_max_profile(st.cfg.max_da, 3,
                                                                       self.logic.now()))
            st.station_max_sent = (st.cfg.max_da, bool(ok))
            await pace()
            await self._boot_profile(st, "fallback TxDefaultProfile",
                                     profiles.tx_default_profile(self._fallback_da.get(st.id, 0)))
            await pace()
            await self._read_list_limits(st, cp)
        await self.sync_local_list(st)
        await pace()
        await self._step(st, "trigger StatusNotification", cp.trigger("StatusNotification"))
        mine = self._limits_decided_with_session(st)
        if mine:
            await self._apply_station(st, mine, {})

    async def _read_list_limits(self, st: StationState, cp: Any) -> None:
        """The wallbox's local list capacity; the caller holds the station's lock.

        A read that fails (the wallbox went away mid-boot, a timeout) is tried again on
        its next connection; until then lists stay within ``default_list_max``.
        """
        limits = await self._step(st, "read local list limits", cp.read_list_limits())
        if limits is not None:
            st.list_limits_read = True
            st.list_max_entries, st.list_chunk, st.list_max_bytes = limits

    async def _catch_up(self, st: StationState) -> None:
        """A booted wallbox reconnected: what it may have missed while away."""
        link = st.link
        try:
            if link is not None and not st.list_limits_read:
                async with self._locks[st.id]:
                    await self.startup.turn()
                    await self._read_list_limits(st, link.cp)
            await self.sync_local_list(st)
        finally:
            if link is not None:
                link.starting = False

    async def _boot_profile(self, st: StationState, what: str, prof: dict) -> bool:
        """One profile of the post-boot sequence; a wallbox that cannot take profiles
        at all is said so once and not asked again until it boots again."""
        if st.profiles_unsupported or st.link is None:
            return False
        try:
            return bool(await st.link.cp.send_profile(prof))
        except Exception as e:
            if peer_text.permanent_refusal(e):
                limit_sender.refuse_profiles(st, e)
            else:
                log.warning("station %s: %s failed (%s)", st.id, what, peer_text.describe(e))
            return False

    async def _step(self, st: StationState, what: str, coro: Any) -> Any:
        try:
            return await coro
        except Exception as e:  # one refused step must not block the others
            log.warning("station %s: %s failed (%s)", st.id, what, peer_text.describe(e))
            return None

    # -- local authorization lists ----------------------------------------------------
    def _on_lists_changed(self, book: Any) -> None:
        for st in self.stations.values():
            if st.connected and st.booted:
                self.coalesce(st, "list", lambda st=st: self.sync_local_list(st))

    async def sync_local_list(self, st: StationState) -> list[str]:
        """Bring the wallbox's local list up to date; returns the statuses of the updates."""
        async with self._locks[st.id]:
            return await list_sync.sync(st, self.lists, self.sessions, self.default_list_max,
                                        self.startup.turn)

    def priority_of(self, group_id: str | None) -> int:
        if group_id is None:
            return 0
        g = self.lists.book.group(group_id)
        return PRIORITISED_CHARGING_PRIORITY if g is not None and g.prioritised else 0

    # -- limits ----------------------------------------------------------------------
    async def apply_limits(self, limits: dict[tuple, tuple]) -> dict[tuple, str]:
        """Send changed limits as TxProfiles; returns a result per key.

        Results: "accepted", "rejected", "unchanged", "no_transaction", "offline",
        "error" (CallError or no answer within ``profile_timeout_s``: tried again next
        call), "pending" (still waiting after ``apply_wait_s``; the send goes on in the
        background), "busy" (a send to that station from an earlier call is still
        waiting), "unknown_station".

        Waiting is bounded by ``apply_wait_s`` so one silent wallbox never stalls the
        control loop that calls this every cycle.
        """
        self._limits = dict(limits)
        # What the sender needs comes from memory (the open sessions, each station's last
        # sent profile), and a limit the wallbox already has costs one dict lookup: no
        # store query, no task for a station with nothing new (edge/store/open_sessions.py).
        open_by_key = self.sessions.open.of_key()
        self._limits_saw = {k: r["session_id"] for k, r in open_by_key.items()}
        results: dict[tuple, str] = {}
        todo: dict[str, dict] = {}
        for key, value in limits.items():
            st = self.stations.get(key[0])
            if st is None:
                results[key] = "unknown_station"
                continue
            rec = open_by_key.get(key)
            if rec is None:
                results[key] = "no_transaction"
            elif st.link is None:
                results[key] = "offline"
            elif st.profiles_unsupported:
                results[key] = "unsupported"
            elif st.profiles.unchanged(key[1], rec["transaction_id"],
                                       0 if rec.get("refused") else int(value[0]), int(value[1])):
                results[key] = "unchanged"
            else:
                todo.setdefault(key[0], {})[key] = value
        tasks = []
        for sid, lim in todo.items():
            busy = self._inflight.get(sid)
            if busy is not None and not busy.done():
                for key in lim:
                    results[key] = "busy"
                continue
            task = self.spawn(self._apply_station(self.stations[sid], lim, results,
                                                  {k[1]: open_by_key[k] for k in lim}))
            self._inflight[sid] = task
            tasks.append(task)
        if tasks:
            await asyncio.wait(tasks, timeout=self.apply_wait_s)
        if len(results) < len(limits):
            for key in limits:
                results.setdefault(key, "pending")
        return dict(results)    # sends still waiting go on filling their own copy

    def _limits_decided_with_session(self, st: StationState) -> dict[tuple, tuple]:
        """The last limits for this station's running transactions, re-sent after a
        boot: only those decided while that transaction existed. A limit decided before
        (0 A for an idle connector) is no answer for a session that started since; it
        runs under the TxDefaultProfile until the next cycle decides."""
        running = {r["connector"]: r["session_id"] for r in self.sessions.open_sessions(st.id)}
        return {k: v for k, v in self._limits.items()
                if k[0] == st.id and k[1] in running
                and self._limits_saw.get(k) == running[k[1]]}

    async def _apply_station(self, st: StationState, limits: dict, results: dict,
                             open_by_conn: dict[int, dict] | None = None) -> None:
        if open_by_conn is None:
            open_by_conn = {r["connector"]: r for r in self.sessions.open_sessions(st.id)}
        await limit_sender.send(st, limits, results, open_by_conn, self.profile_timeout_s)

    def stop_refused(self, st: StationState, rec: dict[str, Any]) -> None:
        """A start answered with a refusal: cap it at 0 A and stop it (refusal.py)."""
        self.spawn(refusal.stop_refused(st, rec, self.profile_timeout_s))

    # -- remote start / stop -----------------------------------------------------------
    async def remote_start(self, station: str, connector: int, payment_ref: str,
                           group_id: str | None = None) -> dict[str, Any]:
        """Ad hoc session: authorize the payment, then ask the wallbox to start.

        Returns {"accepted": bool, "reason": str, "id_tag": str|None}.
        """
        decision = self.lists.authorize_remote_start(payment_ref, station, connector,
                                                     group_id=group_id)
        if decision.accepted and self.logic.storage_low():
            decision = self.logic.storage_refusal()
        if not decision.accepted:
            return {"accepted": False, "reason": decision.reason, "id_tag": None}
        st = self.stations.get(station)
        if st is None or st.link is None:
            return {"accepted": False, "reason": "station_offline", "id_tag": None}
        now = self.logic.now()
        for tag, p in list(st.pending_remote.items()):
            if now - p["at_s"] > self.remote_start_ttl_s:
                # the driver never plugged in: the payment authorization lapses
                del st.pending_remote[tag]
        while len(st.pending_remote) >= MAX_PENDING_REMOTE:
            # a cloud asking faster than drivers plug in: the oldest request lapses
            del st.pending_remote[next(iter(st.pending_remote))]
        id_tag = ("R" + self.ids())[:20]
        st.pending_remote[id_tag] = {"payment_ref": payment_ref, "decision": decision,
                                     "connector": int(connector), "at_s": self.logic.now()}
        try:
            ok = await st.link.cp.request_start(int(connector), id_tag)
        except Exception as e:
            log.warning("station %s: remote start failed (%s)", station, peer_text.describe(e))
            ok = False
        if not ok:
            st.pending_remote.pop(id_tag, None)
            return {"accepted": False, "reason": "rejected_by_station", "id_tag": None}
        return {"accepted": True, "reason": decision.reason, "id_tag": id_tag}

    async def remote_stop(self, session_id: str) -> bool:
        rec = self.sessions.get(session_id)
        if rec is None or rec["state"] != "started":
            return False
        st = self.stations.get(rec["station"])
        if st is None or st.link is None:
            return False
        try:
            return bool(await st.link.cp.request_stop(rec["transaction_id"]))
        except Exception as e:
            log.warning("station %s: remote stop failed (%s)", st.id, peer_text.describe(e))
            return False

    async def clear_limits(self, station: str, connector: int | None = None) -> bool:
        """Remove the edge's transaction profiles (ClearChargingProfile, TxProfile ids)."""
        st = self.stations.get(station)
        if st is None or st.link is None:
            return False
        conns = [connector] if connector is not None else [c.id for c in st.cfg.connectors]
        ok = True
        for cid in conns:
            try:
                ok = await st.link.cp.clear_profile(profiles.TX_PROFILE_ID_BASE + cid, cid) and ok
            except Exception as e:
                log.warning("station %s: ClearChargingProfile failed (%s)", station, peer_text.describe(e))
                ok = False
            st.profiles.forget(cid)
        return ok

    async def trigger(self, station: str, message: str, connector: int | None = None) -> bool:
        st = self.stations.get(station)
        if st is None or st.link is None:
            return False
        try:
            return bool(await st.link.cp.trigger(message, connector))
        except Exception as e:
            log.warning("station %s: TriggerMessage failed (%s)", station, peer_text.describe(e))
            return False

    # -- views -------------------------------------------------------------------------
    def live_sessions(self) -> list[dict[str, Any]]:
        """The open sessions as the allocation takes them, from memory (no store query)."""
        return self._live_of(self.sessions.open.view())

    async def live_sessions_yielding(self, per_turn: int = 200) -> list[dict[str, Any]]:
        """``live_sessions()`` built ``per_turn`` sessions at a time, letting the loop
        run between (the control step's way: at 1,000 sessions the whole pass holds the
        loop for a few ms on a loaded gateway). A session that ended meanwhile is left
        out; one that started meanwhile comes in the next step (its start wakes one)."""
        recs = list(self.sessions.open.view())
        out: list[dict[str, Any]] = []
        for i in range(0, len(recs), per_turn):
            part = recs[i:i + per_turn]
            if i:
                await asyncio.sleep(0)
                current = self.sessions.open.get
                part = [r for r in part if current(r["session_id"]) is not None]
            out.extend(self._live_of(part))
        return out

    def _live_of(self, recs: Any) -> list[dict[str, Any]]:
        """One pass with dict look-ups only: it runs every control step."""
        out = []
        append = out.append
        groups = self.lists.book.group
        stations = self.stations
        connectors = self._connectors
        for rec in recs:
            key = (rec["station"], rec["connector"])
            st = stations.get(key[0])
            conn = connectors.get(key)
            if st is None or conn is None or rec["refused"]:
                continue    # a refused start is allocated nothing (refusal.py)
            gid = rec["group_id"]
            group = groups(gid) if gid else None
            cid = key[1]
            last = st.profiles.last(cid)
            accepted = last is not None and last[3]
            drawn = st.drawn_da.get(cid)
            append({
                "key": key,
                "session_id": rec["session_id"],
                "group_id": gid,
                "prioritised": bool(group.prioritised) if group is not None else False,
                "started_s": rec["started_s"],
                "drawn_da": list(drawn) if drawn is not None else None,
                "drawn_at_s": st.drawn_at_s.get(cid),
                # the phases of the last accepted profile (phase switching), else wiring
                "phases": last[2] if accepted else conn.phases,
                "controllable": bool(st.link is not None and st.controllable
                                     and (last is None or last[3])),
            })
        return out

    def all_connected(self) -> bool:
        """Every configured wallbox has a connection and is through its start-up, and
        no start-up work waits (the site has come up). The GC epoch comes then
        (edge/gc_epochs.py): its one long collection is not added to a burst of
        start-ups, and what their after-boot work built is frozen with the rest."""
        return (all(st.link is not None and not st.link.starting
                    for st in self.stations.values())
                and self.startup.waiting == 0)

    def station_status(self) -> dict[str, dict[str, Any]]:
        return {sid: st.status() for sid, st in self.stations.items()}

    def station_status_of(self, station_id: str) -> dict[str, Any] | None:
        """One station's ``status()`` (None if unknown): per event, not per site."""
        st = self.stations.get(station_id)
        return st.status() if st is not None else None
