"""Polls every configured meter on its own schedule, each one isolated.

Each meter runs in its own asyncio task: a meter that times out, answers
garbage or raises something unexpected only makes its own readings go stale;
the others keep their pace (except that meters sharing one RS-485 bus share
its time, which is physics). ``latest(meter_id)`` always returns the last good
reading, whose ``at_s`` lets the allocation judge its age; ``is_stale`` applies
the meter's configured ``stale_after_s``.

Logging follows the incident, not the poll: a WARNING when a meter starts
failing, an INFO if the kind of failure changes, an INFO when it answers
again, DEBUG for the repeats in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Iterable, Optional

from edge.meters.config import MeterConfig
from edge.meters.decoder import WrapTracker, decode_reading
from edge.meters.errors import MeterDataError, MeterError, MeterExceptionResponse
from edge.meters.model import OPTIONAL_FIELDS
from edge.meters.reading import MeterReading
from edge.meters.sunspec import find_model_block
from edge.meters.transport import ModbusLink, quiet_pymodbus_logging

log = logging.getLogger(__name__)

ILLEGAL_DATA_ADDRESS = 2    # Modbus exception code


def default_link_factory(cfg: MeterConfig) -> ModbusLink:
    return ModbusLink(cfg.transport, host=cfg.host, port=cfg.port, serial_port=cfg.serial_port,
                      baudrate=cfg.baudrate, parity=cfg.parity, stopbits=cfg.stopbits,
                      bytesize=cfg.bytesize, timeout_s=cfg.timeout_s)


class _MeterState:
    def __init__(self, cfg: MeterConfig, link):
        self.cfg = cfg
        self.link = link
        self.origin: Optional[int] = None  # SunSpec model address, found on first read
        self.wraps = WrapTracker()
        self.latest: Optional[MeterReading] = None
        self.failures = 0
        self.polls = 0
        self.errors_total = 0
        self.last_error: Optional[str] = None
        self.incident_kinds: set[str] = set()
        self.incident_since_s: Optional[float] = None
        self.task: Optional[asyncio.Task] = None
        # Requests this meter refused as "illegal data address" that only hold
        # readings we can do without: start address -> those readings.
        self.refused: dict[int, frozenset[str]] = {}


class MeterPoller:
    """Runs the configured meters. ``clock`` returns UTC seconds (injected for tests)."""

    def __init__(self, meters: Iterable[MeterConfig], *, clock: Callable[[], float] = time.time,
                 link_factory: Callable[[MeterConfig], object] = default_link_factory,
                 quiet_library_logs: bool = True):
        self._clock = clock
        self._links: dict[tuple, object] = {}
        self._states: dict[str, _MeterState] = {}
        self._subscribers: list[Callable[[MeterReading], None]] = []
        self._failing_subscribers: set[int] = set()
        self._running = False
        if quiet_library_logs:
            quiet_pymodbus_logging()
        for cfg in meters:
            if cfg.id in self._states:
                raise ValueError("meter id %r configured twice" % cfg.id)
            if cfg.source == "node":
                # Read by a meter node: its registers arrive through ingest() (node_source.py).
                self._states[cfg.id] = _MeterState(cfg, None)
                continue
            key = cfg.link_key()
            if key not in self._links:
                self._links[key] = link_factory(cfg)
            self._states[cfg.id] = _MeterState(cfg, self._links[key])

    # -- queries -----------------------------------------------------------

    def meter_ids(self) -> list[str]:
        return list(self._states)

    def latest(self, meter_id: str) -> Optional[MeterReading]:
        """The last good reading of that meter, or None (never read, or unknown id)."""
        state = self._states.get(meter_id)
        return state.latest if state else None

    def is_stale(self, meter_id: str, now_s: Optional[float] = None) -> bool:
        state = self._states[meter_id]
        if state.latest is None:
            return True
        now = self._clock() if now_s is None else now_s
        return now - state.latest.at_s > state.cfg.stale_after_s

    def status(self, meter_id: str) -> dict:
        state = self._states[meter_id]
        return {
            "meter_id": meter_id,
            "model": state.cfg.model.name,
            "ok": state.failures == 0 and state.latest is not None,
            "stale": self.is_stale(meter_id),
            "last_ok_s": state.latest.at_s if state.latest else None,
            "consecutive_failures": state.failures,
            "failing_since_s": state.incident_since_s,
            "last_error": state.last_error,
            "polls": state.polls,
            "errors_total": state.errors_total,
            "not_read": sorted(set().union(*state.refused.values())),
        }

    def subscribe(self, callback: Callable[[MeterReading], None]) -> None:
        """``callback(reading)`` after every good read (called in the loop, keep it short)."""
        self._subscribers.append(callback)

    # -- meters read by a meter node -----------------------------------------

    def ingest(self, meter_id: str, registers: dict[int, int], at_s: float,
               origin: int = 0) -> Optional[MeterReading]:
        """Registers of a node meter's poll: decoded and judged exactly as a poll of ours.
        A reading older than the one kept (a message overtaken in transit) is not kept."""
        state = self._states[meter_id]
        state.polls += 1
        try:
            reading = decode_reading(state.cfg.model, registers, meter_id=meter_id, at_s=at_s,
                                     origin=origin, wraps=state.wraps)
        except MeterError as exc:
            self._failed(state, exc.kind, str(exc), unexpected=False)
            return None
        if state.latest is not None and reading.at_s < state.latest.at_s:
            return None
        self._succeeded(state, reading)
        return reading

    def ingest_failure(self, meter_id: str, kind: str, message: str) -> None:
        """A node could not read its meter (timeout, exception, protocol)."""
        state = self._states[meter_id]
        state.polls += 1
        self._failed(state, kind, message, unexpected=False)

    # -- polling -----------------------------------------------------------

    async def poll_once(self, meter_id: str) -> Optional[MeterReading]:
        """Read one meter now. Never raises for a meter fault: returns None instead."""
        state = self._states[meter_id]
        if state.link is None:
            return state.latest     # a node meter: its node polls it
        state.polls += 1
        try:
            reading = await self._read(state)
        except asyncio.CancelledError:
            raise
        except MeterError as exc:
            self._failed(state, exc.kind, str(exc), unexpected=False)
            return None
        except Exception as exc:  # a library bug must not end this meter's polling
            self._failed(state, "unexpected", "%s: %s" % (type(exc).__name__, exc), unexpected=True)
            return None
        self._succeeded(state, reading)
        return reading

    async def _read(self, state: _MeterState) -> MeterReading:
        cfg = state.cfg
        model = cfg.model
        if model.sunspec and state.origin is None:
            state.origin = await self._with_retries(
                cfg, lambda: find_model_block(state.link, cfg.device_id, model))
        origin = state.origin or 0
        registers: dict[int, int] = {}
        for address, count in model.read_blocks(origin):
            if address in state.refused:
                continue
            try:
                words = await self._with_retries(
                    cfg, lambda a=address, c=count: state.link.read(model.function_code, a, c, cfg.device_id))
            except MeterExceptionResponse as exc:
                if not self._refuses(state, exc, address, count, origin):
                    raise
                continue
            registers.update(zip(range(address, address + count), words))
        missing = frozenset().union(*state.refused.values())
        return decode_reading(model, registers, meter_id=cfg.id, at_s=self._clock(),
                              origin=origin, wraps=state.wraps, missing=missing)

    def _refuses(self, state: _MeterState, exc: MeterExceptionResponse, address: int, count: int,
                 origin: int) -> bool:
        """Whether the meter lacks registers we can do without (a model variant without
        energy counters, say): then it is read without them from now on, said once."""
        fields = state.cfg.model.fields_in(address - origin, count)
        if exc.code != ILLEGAL_DATA_ADDRESS or not fields or not fields <= OPTIONAL_FIELDS:
            return False
        state.refused[address] = frozenset(fields)
        log.warning("meter %s (%s) refuses registers %d..%d (%s): %s; reading it without %s. "
                    "If the meter has them, check that its model file matches its type label.",
                    state.cfg.id, state.cfg.model.name, address, address + count - 1,
                    ", ".join(sorted(fields)), exc, " and ".join(sorted(fields)))
        return True

    async def _with_retries(self, cfg: MeterConfig, attempt):
        for n in range(cfg.retries + 1):
            try:
                return await attempt()
            except MeterDataError:
                raise
            except MeterError:
                if n == cfg.retries:
                    raise

    def _failed(self, state: _MeterState, kind: str, message: str, unexpected: bool) -> None:
        cfg = state.cfg
        state.failures += 1
        state.errors_total += 1
        state.last_error = message
        if kind != "data":
            # The device may have been swapped: find the SunSpec map again, and ask
            # again for what the old one refused.
            state.origin = None
            state.refused.clear()
        if not state.incident_kinds:
            state.incident_since_s = self._clock()
            state.incident_kinds.add(kind)
            log.log(logging.ERROR if unexpected else logging.WARNING,
                    "meter %s (%s): %s; its readings go stale until it answers again",
                    cfg.id, cfg.model.name, message, exc_info=unexpected)
        elif kind not in state.incident_kinds:
            state.incident_kinds.add(kind)
            log.info("meter %s: still failing, now: %s", cfg.id, message)
        else:
            log.debug("meter %s: failure %d: %s", cfg.id, state.failures, message)

    def _succeeded(self, state: _MeterState, reading: MeterReading) -> None:
        if state.incident_kinds:
            log.info("meter %s: answering again after %d failed polls (%.1f s)", state.cfg.id,
                     state.failures, reading.at_s - (state.incident_since_s or reading.at_s))
        state.failures = 0
        state.incident_kinds = set()
        state.incident_since_s = None
        state.last_error = None
        state.latest = reading
        for callback in list(self._subscribers):
            try:
                callback(reading)
            except Exception:  # a subscriber's bug must not stop the meters
                if id(callback) not in self._failing_subscribers:
                    self._failing_subscribers.add(id(callback))
                    log.exception("meter reading subscriber %r failed (logged once)", callback)
            else:
                self._failing_subscribers.discard(id(callback))

    async def _run(self, state: _MeterState) -> None:
        loop = asyncio.get_running_loop()
        interval = state.cfg.interval_s
        next_at = loop.time()
        while self._running:
            await self.poll_once(state.cfg.id)
            next_at += interval
            now = loop.time()
            if next_at < now:  # a slow poll: skip the missed slots instead of bursting
                next_at = now
            await asyncio.sleep(next_at - now)

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        for meter_id, state in self._states.items():
            if state.link is not None:
                state.task = asyncio.create_task(self._run(state), name="meter-" + meter_id)
        log.info("polling %d meter(s): %s", len(self._states), ", ".join(self._states))

    async def stop(self) -> None:
        self._running = False
        tasks = [s.task for s in self._states.values() if s.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for state in self._states.values():
            state.task = None
        for link in self._links.values():
            link.close()
