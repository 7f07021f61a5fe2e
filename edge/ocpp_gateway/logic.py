"""Version-neutral handling of what wallboxes report.

The v16/v201 translators turn wire payloads into calls here (plain ints, strings and
epoch seconds) and turn the answers back into wire payloads. Everything a wallbox is
told "accepted" about is committed to the session store before the call returns.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from edge.authorizer import Authorizer
from edge.core.authorize import Decision
from edge.core.tariff import session_cost
from edge.ocpp_gateway.peer_text import quote
from edge.ocpp_gateway.station import StationState

log = logging.getLogger(__name__)

ENERGY = "Energy.Active.Import.Register"
CURRENT = "Current.Import"

# A start that happened this long before the wallbox's current connection came from its
# offline queue (it authorized from its local list while the edge was unreachable).
LATE_AFTER_S = 60

# The reason code of a start refused below the free-space floor (docs/domain.md).
STORAGE_LOW = "storage_low"


class Logic:
    def __init__(self, site: Any, lists: Any, sessions: Any, clock: Callable[[], float],
                 emit: Callable[[str, dict], None], authorizer: Any = None,
                 space: Any = None) -> None:
        self.site = site
        self.lists = lists
        # lists, authorization cache, online check, offline policy (edge/authorizer.py)
        self.authorizer = authorizer or Authorizer(lists, clock=clock)
        self.sessions = sessions
        self.clock = clock
        self.emit = emit
        self.remote_start_ttl_s = 300
        self.space = space          # the free-space floor (edge/store/space.py) or None

    # -- the free-space floor -------------------------------------------------------
    def storage_low(self) -> bool:
        return self.space is not None and self.space.low()

    @staticmethod
    def storage_refusal() -> Decision:
        """Below the free-space floor no new session starts: the room left is kept for
        the stops, meter values and records of the sessions already running."""
        return Decision(False, STORAGE_LOW, "the edge's disk is nearly full: no new sessions")

    def now(self) -> int:
        return int(self.clock())

    # -- station lifecycle --------------------------------------------------------
    def boot(self, st: StationState, vendor: str, model: str, firmware: str | None,
             serial: str | None) -> None:
        st.boot = {"vendor": vendor, "model": model, "firmware": firmware, "serial": serial}
        st.booted = True
        st.last_seen_s = self.now()
        # A (re)booted wallbox has dropped its transaction profiles.
        st.profiles.forget()
        st.station_max_sent = None
        st.profiles_unsupported = False     # new firmware may take profiles: ask again
        log.info("station %s booted: %s %s fw=%s", st.id, quote(vendor), quote(model),
                 quote(firmware))

    def seen(self, st: StationState) -> None:
        st.last_seen_s = self.now()

    def status(self, st: StationState, connector_id: int, status: str,
               error_code: str | None = None) -> None:
        if not st.accepts_connector(int(connector_id)):
            return          # junk connector ids beyond the station's bound: not kept
        st.connector_status[int(connector_id)] = status
        st.connector_error[int(connector_id)] = None if error_code in (None, "NoError") \
            else error_code
        st.last_seen_s = self.now()
        self.emit("status", {"station": st.id, "connector": int(connector_id),
                             "status": status, "error_code": error_code})

    # -- authorization ------------------------------------------------------------
    async def authorize(self, st: StationState, token: str, connector_id: int | None,
                        new_session: bool = True) -> Any:
        """May await the cloud (online authorization), at most its deadline.

        ``new_session`` False: the token of a transaction already running (its stop, a
        2.0.1 update), which the free-space floor must not refuse: the wallbox would
        stop a session the floor exists to let finish.
        """
        pending = st.pending_remote.get(token)
        if new_session and self.storage_low():
            decision = self.storage_refusal()
        elif pending is not None and self.now() - pending["at_s"] <= self.remote_start_ttl_s:
            return pending["decision"]
        else:
            decision = await self.authorizer.authorize(token, st.id, connector_id)
        if not decision.accepted:
            log.info("station %s: token %s refused (%s)", st.id, quote(token), decision.reason)
        return decision

    # -- transactions -------------------------------------------------------------
    async def start(self, st: StationState, connector_id: int, token: str | None,
              meter_start_wh: int | None, started_s: int, transaction_id: str | None = None,
              offline: bool = False, ended: bool = False) -> tuple[dict, Any, bool]:
        """Record a started transaction; returns (record, decision, created).

        ``ended``: the transaction is reported for the first time as it ends (a 2.0.1
        token shown only at the end): it happened, so the free-space floor does not
        refuse it.

        ``transaction_id`` None: the store allocates an integer id (OCPP 1.6).
        A start that arrives again (retransmitted or late) returns the first record.
        """
        # Late = started before this connection existed (the wallbox was cut off), judged
        # against our connect time, not our clock, so a wallbox clock running a little
        # behind does not make every start "late".
        connected_since = st.connected_since_s if st.connected_since_s is not None else self.now()
        late = offline or (int(started_s) < connected_since - LATE_AFTER_S)
        pending = st.pending_remote.pop(token, None) if token is not None else None
        if pending is not None:
            decision = pending["decision"]
            payment_ref = pending["payment_ref"]
        elif token is not None:
            decision = await self.authorizer.authorize(token, st.id, connector_id)
            payment_ref = None
        else:
            decision = None
            payment_ref = None
        if decision is not None and not late and not ended and self.storage_low():
            # A start reported late happened while the wallbox was cut off: it is
            # recorded as it was authorized; a new one is refused (and stopped).
            decision = self.storage_refusal()
        refused = None
        if decision is not None and not decision.accepted \
                and not self._on_given_list(st, late, token):
            # Refused: recorded (the car may draw all the same, and its stop will come),
            # but through no group, at no tariff; the gateway stops it and allocates it
            # nothing (docs/domain.md, "Refused starts").
            refused = decision.reason
        group_id = decision.group_id if decision is not None and refused is None else None
        tariff = decision.tariff if decision is not None and refused is None else None
        # The natural key of a 1.6 start: the wallbox resends exactly these fields.
        dedup = None
        if transaction_id is None:
            dedup = "%s|%d|%s|%d|%s" % (st.id, int(connector_id), token, int(started_s),
                                         meter_start_wh)
        rec, created = self.sessions.start(
            st.id, int(connector_id), transaction_id, token, meter_start_wh,
            int(started_s), group_id=group_id, tariff=tariff, payment_ref=payment_ref,
            reported_late=late, dedup_key=dedup, refused=refused)
        if created:
            log.info("station %s connector %s: session %s started (tx %s%s%s)", st.id,
                     connector_id, rec["session_id"], rec["transaction_id"],
                     ", reported late" if late else "",
                     ", refused: %s" % refused if refused else "")
            st.drawn_da.pop(int(connector_id), None)
            st.drawn_at_s.pop(int(connector_id), None)
            self.emit("session_started", dict(rec))
            self._close_superseded(st, rec)
        return rec, decision, created

    def _close_superseded(self, st: StationState, new: dict) -> None:
        """A connector runs one transaction at a time: an older one still open lost its
        stop (power cut in the wallbox). Close it at its last reading so it neither
        stays in the allocation nor stays unbilled forever."""
        for old in self.sessions.open_sessions(st.id):
            if old["connector"] == new["connector"] and old["session_id"] != new["session_id"] \
                    and old["started_s"] <= new["started_s"]:
                log.warning("station %s: session %s closed, superseded by %s", st.id,
                            old["session_id"], new["session_id"])
                done = self.sessions.stop(old["session_id"], new["started_s"], None,
                                          "Superseded", cost_fn=_cost)
                self.emit("session_stopped", dict(done))

    def honour_offline_start(self, st: StationState, rec: dict, token: str | None) -> bool:
        """Answer Accepted for a late start authorized from the list we gave the wallbox.

        The energy has flowed and the wallbox did what we told it; for any other late
        start the real decision is sent (a token blocked meanwhile stops the session).
        """
        return self._on_given_list(st, rec["reported_late"], token)

    @staticmethod
    def _on_given_list(st: StationState, late: bool, token: str | None) -> bool:
        if not late or token is None:
            return False
        held = {uid.upper() for uid in st.local_list.entries}
        return token.upper() in held

    def meter(self, st: StationState, connector_id: int, transaction_id: Any,
              samples: list[dict]) -> None:
        """Fold meter samples: energy register to the session, currents to drawn_da."""
        st.last_seen_s = self.now()
        rec = None
        if transaction_id is not None:
            rec = self.sessions.by_transaction(st.id, transaction_id)
        elif connector_id:
            for r in self.sessions.open_sessions(st.id):
                if r["connector"] == int(connector_id):
                    rec = r
        if rec is not None and self.sessions.stop_held(rec["session_id"]):
            rec = None      # ended at the wallbox; its samples came with the held stop
        conn = self.site.connector(st.id, int(connector_id)) if connector_id else None
        by_time: dict[int, dict] = {}
        for s in samples:
            by_time.setdefault(s["at_s"], []).append(s)
        for at_s in sorted(by_time):
            energy_wh, currents = _fold(by_time[at_s])
            drawn = _to_site_phases(currents, conn) if conn is not None else None
            cid = int(connector_id) if connector_id else None
            # Samples replayed late (an offline queue) must not overwrite a newer picture.
            if (drawn is not None and rec is not None and rec["state"] == "started"
                    and at_s >= st.drawn_at_s.get(cid, at_s)):
                st.drawn_da[cid] = drawn
                st.drawn_at_s[cid] = at_s
            if rec is not None and rec["state"] == "started":
                self.sessions.add_sample(rec["session_id"], at_s, energy_wh,
                                         drawn if drawn is not None else None)
            self.emit("meter_sample", {"station": st.id, "connector": connector_id,
                                       "session_id": rec["session_id"] if rec else None,
                                       "at_s": at_s, "energy_wh": energy_wh,
                                       "drawn_da": drawn})

    def stop(self, st: StationState, transaction_id: Any, stopped_s: int,
             meter_stop_wh: int | None, reason: str | None) -> dict | None:
        rec = self.sessions.by_transaction(st.id, transaction_id)
        if rec is None:
            log.warning("station %s: stop for unknown transaction %s ignored", st.id,
                        quote(transaction_id))
            return None
        was_open = rec["state"] == "started"
        held_before = self.sessions.stop_held(rec["session_id"])
        try:
            done = self.sessions.stop(rec["session_id"], int(stopped_s), meter_stop_wh, reason,
                                      cost_fn=_cost)
        except Exception as exc:
            if was_open and not held_before and self.sessions.stop_held(rec["session_id"]):
                self._stop_held(st, rec, exc)
            raise           # not acknowledged: the wallbox sends the stop again
        if was_open:
            if not held_before:
                self._forget_connector(st, done["connector"])
            log.info("station %s: session %s completed, %s Wh", st.id, done["session_id"],
                     done["energy_wh"])
            self.emit("session_stopped", dict(done))
        return done

    def _stop_held(self, st: StationState, rec: dict, exc: BaseException) -> None:
        """The store refused a stop. The transaction has ended all the same: the edge
        stops treating it as running (no profiles for it, nothing allocated, no
        "Superseded" when the connector starts again) and keeps believing the wallbox;
        the store writes the stop with its real time and register once it can."""
        # INFO: the store has said WARNING once for the incident (edge/store/sessions.py)
        log.info("station %s: the stop of session %s could not be stored (%s); it is kept"
                 " in memory and written as soon as the store takes it", st.id,
                 rec["session_id"], quote(exc, 120))
        self._forget_connector(st, rec["connector"])
        self.emit("session_stop_held", {"station": st.id, "connector": rec["connector"],
                                        "session_id": rec["session_id"]})

    @staticmethod
    def _forget_connector(st: StationState, connector: int) -> None:
        st.drawn_da.pop(connector, None)
        st.drawn_at_s.pop(connector, None)
        st.profiles.forget(connector)

    def write_held_stops(self) -> int:
        """Write the stops a failing store refused; returns how many were written."""
        done = self.sessions.write_held_stops()
        for rec in done:
            log.info("station %s: session %s completed (its stop written once the store"
                     " took it), %s Wh", rec["station"], rec["session_id"], rec["energy_wh"])
            self.emit("session_stopped", dict(rec))
        return len(done)


def _cost(rec: dict) -> dict | None:
    if rec.get("tariff") is None:
        return None
    plugged_s = max(0, int(rec["stopped_s"]) - int(rec["started_s"]))
    return session_cost(rec["tariff"], int(rec["energy_wh"]), plugged_s)


def _fold(samples: list[dict]) -> tuple[int | None, dict[int, int]]:
    """Energy register in Wh and per-connector-phase current (index 0..2) in dA."""
    energy = None
    currents: dict[int, int] = {}
    for s in samples:
        m = s.get("measurand") or ENERGY
        loc = s.get("location")
        if loc not in (None, "Outlet"):
            continue  # an EV-side or inlet value is not what the circuit carries
        if m == ENERGY and s.get("phase") in (None, ""):
            energy = int(round(s["value"]))
        elif m == CURRENT:
            ph = s.get("phase")
            idx = {"L1": 0, "L2": 1, "L3": 2}.get(ph or "")
            if idx is None and ph in (None, ""):
                idx = 0
            if idx is not None:
                currents[idx] = max(0, int(round(s["value"] * 10)))
    return energy, currents


def _to_site_phases(currents: dict[int, int], conn: Any) -> list[int] | None:
    """Connector phase i carries site phase ``conn.wiring[i]`` (wiring is per config)."""
    if not currents:
        return None
    drawn = [0, 0, 0]
    for idx, da in currents.items():
        if idx < len(conn.wiring):
            drawn[conn.wiring[idx]] += da
    return drawn
