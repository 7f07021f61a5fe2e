"""One simulated wallbox, independent of the OCPP version it speaks.

The protocol side (`v16.py`, `v201.py`) turns frames into calls on this object
and turns the records it queues into frames. Transaction messages go through
one FIFO queue so they leave in order, and stay queued while the server is
unreachable; they carry the time of the event, so a late delivery still
reports when things happened.
"""
from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time

from . import config as cfg
from .connector import VOLTS, Connector, fair_shares
from .local_list import LocalList
from .model import EV, MIN_EV_CURRENT_A, Record, StationSpec, Tx
from .profiles import Profile, ProfileError, ProfileStore, TX

log = logging.getLogger(__name__)

MAX_QUEUE = 20000  # records; beyond this the oldest meter samples are dropped


class Station:
    def __init__(self, spec: StationSpec, clock) -> None:
        self.spec = spec
        self.id = spec.id
        self.clock = clock
        self.connectors = {i + 1: Connector(spec.id, i + 1, c.phases, c.max_current_a)
                           for i, c in enumerate(spec.connectors)}
        self.profiles = ProfileStore(spec.max_profiles)
        self.local_list = LocalList(spec.local_list_max, spec.local_list_per_message)
        self.config = cfg.initial(spec)
        self.online = False
        self.queue: collections.deque[Record] = collections.deque()
        self.queue_changed = asyncio.Event()
        self.link = None            # set by the link: has `async authorize(id_tag) -> str`
        self._tx_ids = itertools.count(1)
        self._wake_s: float | None = None   # when the next schedule change is due
        self._wake_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        # Observations for benchmarks and displays (bounded: a demo may run for days).
        self.authorize_rtt_s: collections.deque[float] = collections.deque(maxlen=10000)
        self.authorizing = 0        # Authorize requests waiting for the server
        # (wall time, connector, limit_a) after each accepted SetChargingProfile
        self.profile_log: collections.deque[tuple] = collections.deque(maxlen=1000)

    # -- configuration -------------------------------------------------------
    def conf(self, key: str) -> str:
        return self.config[key]["value"]

    def conf_int(self, key: str) -> int:
        return int(self.config[key]["value"])

    def conf_bool(self, key: str) -> bool:
        return self.config[key]["value"] == "true"

    def change_conf(self, key: str, value) -> str:
        """'Accepted', 'Rejected' (read-only or bad value) or 'NotSupported'."""
        entry = self.config.get(key)
        if entry is None:
            return "NotSupported"
        if entry["readonly"]:
            return "Rejected"
        try:
            entry["value"] = cfg.check_value(key, entry, value)
        except ValueError as e:
            log.warning("%s: refused configuration: %s", self.id, e)
            return "Rejected"
        return "Accepted"

    # -- helpers -------------------------------------------------------------
    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def enqueue(self, record: Record) -> None:
        if record.kind == "status" and not self.online:
            return  # statuses are sent afresh after the next boot
        if record.tx is not None:
            # Numbered when it happens, so a message sent again after a lost answer
            # keeps its number (2.0.1 seqNo; the server can spot the repeat).
            record.data["seq_no"] = record.tx.next_seq()
        if len(self.queue) >= MAX_QUEUE:
            for i, old in enumerate(self.queue):
                if old.kind == "meter":
                    del self.queue[i]
                    break
        self.queue.append(record)
        self.queue_changed.set()

    def set_state(self, conn: Connector, state: str) -> None:
        if conn.state != state:
            conn.state = state
            self.enqueue(Record("status", conn.id, self.clock(), not self.online,
                                data={"status": state}))

    def connector(self, connector_id) -> Connector | None:
        return self.connectors.get(connector_id) if isinstance(connector_id, int) else None

    def find_tx(self, server_id) -> Connector | None:
        for conn in self.connectors.values():
            if conn.tx is not None and conn.tx.server_id is not None \
                    and str(conn.tx.server_id) == str(server_id):
                return conn
        return None

    # -- energy and current --------------------------------------------------
    def integrate(self, conn: Connector, now_s: float) -> None:
        if conn.last_s is not None and now_s > conn.last_s:
            conn.meter_ws += conn.drawn_a * conn.drawn_phases * VOLTS * (now_s - conn.last_s)
        conn.last_s = now_s

    def recompute(self) -> None:
        """Work out offers from profiles; the car follows after the response delay."""
        now = self.clock()
        wants = {}
        for conn in self.connectors.values():
            found = None
            if conn.tx is not None or conn.ev is not None:
                found = self.profiles.connector_limit(conn.id, now, conn.tx, conn.phases)
            offer = conn.max_a if found is None else min(conn.max_a, found[0])
            phases = conn.phases if found is None or not found[1] else min(conn.phases, found[1])
            conn.limit_a = None if found is None else found[0]
            wants[conn.id] = [offer, phases]
        cap = self.profiles.station_limit(now, 3)
        if cap is not None:
            # Charging connectors share the cap by fair shares; each is then offered its
            # headroom: the cap minus what the others are granted.
            active = [c for c in self.connectors.values() if self._charging(c)]
            granted = fair_shares(cap, {c.id: min(wants[c.id][0], c.ev.max_current_a)
                                        for c in active})
            total = sum(granted.values())
            for conn in self.connectors.values():
                headroom = cap - (total - granted.get(conn.id, 0.0))
                offer = min(wants[conn.id][0], headroom)
                wants[conn.id][0] = offer
                conn.limit_a = offer if conn.limit_a is None else min(conn.limit_a, offer)
        for conn in self.connectors.values():
            offer, phases = wants[conn.id]
            conn.offered_a = round(offer, 1) if conn.tx is not None else 0.0
            if self._charging(conn):
                target = min(offer, conn.ev.max_current_a)
                use = min(phases, conn.ev.phases)
                if target < MIN_EV_CURRENT_A:
                    target, use = 0.0, 0
            else:
                target, use = 0.0, 0
            target = round(target, 1)
            if (target, use) != (conn.target_a, conn.target_phases):
                conn.target_a, conn.target_phases = target, use
                delay = self.spec.response_delay_s
                # Stopping is immediate (the contactor opens); following a limit is slow.
                if delay <= 0 or conn.tx is None:
                    self._follow(conn)
                else:
                    self.spawn(self._follow_later(conn, delay))
            elif conn.tx is not None:
                self._update_state(conn)
        self._plan_wake(now)

    def _plan_wake(self, now: float) -> None:
        """Wake up when a schedule period changes, so limits follow it on time."""
        starts = {c.id: c.tx.started_s for c in self.connectors.values() if c.tx is not None}
        wake = self.profiles.next_change(now, starts) if starts else None
        if wake == self._wake_s:
            return
        if self._wake_task is not None:
            self._wake_task.cancel()
        self._wake_s, self._wake_task = wake, None
        if wake is not None:
            self._wake_task = self.spawn(self._wake_at(wake))

    async def _wake_at(self, wake: float) -> None:
        await self.clock.sleep(wake - self.clock())
        self._wake_s = self._wake_task = None
        self.recompute()

    @staticmethod
    def _charging(conn: Connector) -> bool:
        return conn.tx is not None and conn.ev is not None and not conn.full \
            and not conn.tx.rejected

    async def _follow_later(self, conn: Connector, delay: float) -> None:
        await self.clock.sleep(delay)
        self._follow(conn)

    def _follow(self, conn: Connector) -> None:
        self.integrate(conn, self.clock())
        conn.drawn_a, conn.drawn_phases = conn.target_a, conn.target_phases
        self._update_state(conn)

    def _update_state(self, conn: Connector) -> None:
        if conn.tx is None:
            return
        if conn.full or conn.tx.rejected:
            self.set_state(conn, "SuspendedEV")
        elif conn.drawn_a > 0:
            self.set_state(conn, "Charging")
        elif conn.target_a > 0:
            pass  # the car is still ramping up
        else:
            self.set_state(conn, "SuspendedEVSE")

    # -- EVs and sessions ----------------------------------------------------
    async def plug_in(self, connector_id: int, ev: EV) -> bool:
        """An EV arrives. With a tag it authorizes and starts; True if charging starts."""
        conn = self.connector(connector_id)
        if conn is None:
            raise ValueError("connector: no connector %r at %s" % (connector_id, self.id))
        if conn.ev is not None:
            raise ValueError("connector: %s/%d is occupied" % (self.id, connector_id))
        self.integrate(conn, self.clock())
        conn.ev, conn.full = ev, False
        if ev.stay_s is not None:
            self.spawn(self._leave_after(conn, ev, ev.stay_s))
        if conn.inoperative:
            return False   # out of service: the car is parked, nothing starts
        self.set_state(conn, "Preparing")
        if ev.id_tag is None:
            return False
        status = await self.authorize(ev.id_tag)
        if status != "Accepted" or conn.ev is not ev or conn.tx is not None:
            return False
        self.start_tx(conn, ev.id_tag)
        return True

    async def _leave_after(self, conn: Connector, ev: EV, stay_s: float) -> None:
        await self.clock.sleep(stay_s)
        if conn.ev is ev:
            self.unplug(conn.id)

    async def authorize(self, id_tag: str) -> str:
        """Authorization status for a tag: from the server, else from the local list."""
        listed = self.local_list.lookup(id_tag, self.clock()) \
            if self.conf_bool("LocalAuthListEnabled") else None
        if self.online and listed == "Accepted" and self.conf_bool("LocalPreAuthorize"):
            return "Accepted"
        if self.online and self.link is not None:
            self.authorizing += 1
            try:
                t0 = time.perf_counter()
                status = await self.link.authorize(id_tag)
                self.authorize_rtt_s.append(time.perf_counter() - t0)
                return status
            except Exception as e:  # connection lost mid-call: decide as offline
                log.info("%s: authorize failed online (%s), deciding offline", self.id, e)
            finally:
                self.authorizing -= 1
        if listed is None:
            return "Accepted" if self.conf_bool("AllowOfflineTxForUnknownId") else "Invalid"
        if listed == "Accepted" and not self.conf_bool("LocalAuthorizeOffline"):
            return "Invalid"
        return listed

    def start_tx(self, conn: Connector, id_tag: str, remote_start_id: int | None = None,
                 remote: bool = False) -> Tx:
        now = self.clock()
        self.integrate(conn, now)
        tx = Tx(next(self._tx_ids), id_tag, now, int(conn.meter_wh), not self.online,
                remote_start_id=remote_start_id)
        if self.spec.version == "2.0.1":
            # 2.0.1 transactionId: at most 36 characters, unique for this station even
            # across restarts (start time in hex).
            tx.server_id = "%s-%x-%d" % (self.id[:16], int(now), tx.local_id)
        conn.tx = tx
        self.spawn(self._meter_loop(conn, tx))
        start = Record("start", conn.id, now, not self.online, tx,
                       {"meter_wh": tx.meter_start_wh,
                        "trigger": "RemoteStart" if remote else "Authorized"})
        self.enqueue(start)
        self.recompute()
        start.data["state"] = conn.state
        return tx

    def stop_tx(self, conn: Connector, reason: str) -> None:
        tx = conn.tx
        if tx is None:
            return
        now = self.clock()
        self.integrate(conn, now)
        tx.stopped_s, tx.stop_reason = now, reason
        self.enqueue(Record("stop", conn.id, now, not self.online, tx,
                            {"meter_wh": int(conn.meter_wh), "reason": reason,
                             "sample": self.sample_data(conn)}))
        conn.tx = None
        self.profiles.drop_tx_profiles(conn.id)
        conn.target_a = conn.drawn_a = conn.offered_a = 0.0
        conn.target_phases = conn.drawn_phases = 0
        self.set_state(conn, self._idle_state(conn))
        self.recompute()

    def unplug(self, connector_id: int, reason: str = "EVDisconnected") -> None:
        conn = self.connector(connector_id)
        if conn is None:
            raise ValueError("connector: no connector %r at %s" % (connector_id, self.id))
        if conn.tx is not None:
            self.stop_tx(conn, reason)
        conn.ev = None
        self.set_state(conn, self._idle_state(conn))

    @staticmethod
    def _idle_state(conn: Connector) -> str:
        if conn.inoperative:
            return "Unavailable"
        return "Finishing" if conn.ev is not None else "Available"

    def change_availability(self, connector_id: int, operative: bool) -> str:
        """0 = every connector. 'Accepted', 'Scheduled' (after the running session)
        or 'Rejected' (no such connector)."""
        if connector_id == 0:
            targets = list(self.connectors.values())
        else:
            conn = self.connector(connector_id)
            if conn is None:
                return "Rejected"
            targets = [conn]
        scheduled = False
        for conn in targets:
            conn.inoperative = not operative
            if conn.tx is not None:
                scheduled = scheduled or not operative
                continue
            if operative:
                self.set_state(conn, "Preparing" if conn.ev is not None else "Available")
            else:
                self.set_state(conn, "Unavailable")
        return "Scheduled" if scheduled else "Accepted"

    def remote_start(self, connector_id: int | None, id_tag: str,
                     remote_start_id: int | None = None,
                     profile: Profile | None = None) -> bool:
        """Ad hoc start (payment at the wallbox's QR code): accepted if the connector is free."""
        if connector_id is None:
            free = [c for c in self.connectors.values() if c.tx is None and not c.inoperative]
            waiting = [c for c in free if c.ev is not None and c.ev.id_tag is None]
            conn = (waiting or free or [None])[0]
        else:
            conn = self.connector(connector_id)
        if conn is None or conn.tx is not None or conn.inoperative:
            return False
        if profile is not None:
            try:
                self.profiles.install(profile)
            except ProfileError:
                return False
        assumed = None
        if conn.ev is None:
            d = self.spec.default_ev
            assumed = conn.ev = EV(id_tag, d.need_wh, d.max_current_a, d.phases,
                                   d.leave_when_full)
            conn.full = False
        self.spawn(self._remote_start(conn, id_tag, remote_start_id, assumed))
        return True

    async def _remote_start(self, conn: Connector, id_tag: str, remote_start_id,
                            assumed: EV | None) -> None:
        if self.conf_bool("AuthorizeRemoteTxRequests"):
            if await self.authorize(id_tag) != "Accepted":
                if assumed is not None and conn.ev is assumed and conn.tx is None:
                    conn.ev = None   # the car we assumed never came
                return
        if conn.tx is None and conn.ev is not None:
            self.start_tx(conn, id_tag, remote_start_id, remote=True)

    def remote_stop(self, server_id) -> bool:
        conn = self.find_tx(server_id)
        if conn is None:
            return False
        self.stop_tx(conn, "Remote")
        return True

    def reset(self, reason: str) -> None:
        """A reset ordered by the server: running sessions end now (reason e.g. HardReset)."""
        for conn in self.connectors.values():
            if conn.tx is not None:
                self.stop_tx(conn, reason)

    def start_rejected(self, tx: Tx, status: str) -> None:
        """The server refused the token of a started (e.g. offline) transaction."""
        log.info("%s: transaction %s refused by the server (%s)", self.id, tx.server_id, status)
        if not self.conf_bool("StopTransactionOnInvalidId"):
            return      # charges on until the server stops it
        for conn in self.connectors.values():
            if conn.tx is tx:
                tx.rejected = True
                self.stop_tx(conn, "DeAuthorized")

    # -- profiles ------------------------------------------------------------
    def set_profile(self, profile: Profile) -> str:
        if not self.spec.accept_profiles:
            return "Rejected"
        if profile.connector_id != 0 and profile.connector_id not in self.connectors:
            return "Rejected"
        if profile.purpose == TX:
            conn = self.connectors[profile.connector_id]
            if conn.tx is None:
                return "Rejected"
            if profile.transaction_id is not None and profile.transaction_id != str(conn.tx.server_id):
                return "Rejected"
        if profile.stack_level > self.conf_int("ChargeProfileMaxStackLevel"):
            return "Rejected"
        try:
            self.profiles.install(profile)
        except ProfileError as e:
            log.warning("%s: profile refused: %s", self.id, e)
            return "Rejected"
        self.recompute()
        wall = time.time()
        for conn in self.connectors.values():
            if profile.connector_id in (0, conn.id):
                self.profile_log.append((wall, conn.id, conn.limit_a))
        return "Accepted"

    def clear_profiles(self, **criteria) -> bool:
        removed = self.profiles.clear(**criteria)
        if removed:
            self.recompute()
        return removed > 0

    # -- metering ------------------------------------------------------------
    def sample_data(self, conn: Connector) -> dict:
        phases = conn.drawn_phases
        currents = [conn.drawn_a if i < phases else 0.0 for i in range(conn.phases)]
        return {"energy_wh": int(conn.meter_wh), "currents_a": currents,
                "power_w": int(conn.drawn_a * phases * VOLTS), "offered_a": conn.offered_a,
                "state": conn.state}

    async def _meter_loop(self, conn: Connector, tx: Tx) -> None:
        """Samples every MeterValueSampleInterval from the start of the transaction
        (OCPP 1.6 section 9.1), so sessions started at different times spread out."""
        while True:
            await self.clock.sleep(max(1, self.conf_int("MeterValueSampleInterval")))
            if conn.tx is not tx:
                return
            try:
                self.sample(conn)
            except Exception:  # a bug here must not stop the car's meter
                log.exception("%s: meter sample failed", self.id)

    def sample(self, conn: Connector) -> None:
        """One meter sample of a charging connector: integrate, let a full car stop, queue it."""
        now = self.clock()
        self.recompute()  # schedules change with time
        self.integrate(conn, now)
        if conn.tx is None or conn.ev is None:
            return
        if not conn.full and conn.session_wh >= conn.ev.need_wh:
            conn.full = True
            self.recompute()
            if conn.ev.leave_when_full:
                self.enqueue(Record("meter", conn.id, now, not self.online, conn.tx,
                                    self.sample_data(conn)))
                self.unplug(conn.id)
                return
        self.enqueue(Record("meter", conn.id, now, not self.online, conn.tx,
                            self.sample_data(conn)))

    def status_all(self) -> None:
        """Queue the status of every connector (after a boot)."""
        now = self.clock()
        for conn in self.connectors.values():
            self.enqueue(Record("status", conn.id, now, False, data={"status": conn.state}))

    def snapshot(self) -> list[dict]:
        return [c.snapshot() for c in self.connectors.values()]
