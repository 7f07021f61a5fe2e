"""Online authorization over MQTT: ``auth_request`` up, ``auth_reply`` down, matched by
a correlation id (``request_id``).

A wallbox waits for its answer, so every question has a deadline; a cloud that
answers later is not waited for, but its answer is still handed on (``on_late``) so
the next attempt of the same driver finds it in the cache.

Flood protection: at most ``max_in_flight`` questions are outstanding at the cloud at
any time. A question counts until its answer arrives or ``hold_s`` after it was
sent (a cloud that never answers holds the slots that long, and meanwhile new unknown
tokens get the offline policy instead of more traffic). A question for a token that
is already being asked joins the outstanding one.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Callable, Dict, Optional

from edge.cloud import messages

log = logging.getLogger(__name__)

Answer = Dict[str, Any]     # a validated auth_reply body (messages.validate_auth_reply)


class _Question:
    __slots__ = ("request_id", "key", "future", "release", "waiters")

    def __init__(self, request_id: str, key: str, future: "asyncio.Future[Answer]") -> None:
        self.request_id = request_id
        self.key = key
        self.future = future
        self.release: Optional[asyncio.TimerHandle] = None
        self.waiters = 0            # callers still waiting (0: a late answer)


class AuthRequests:
    """``await ask(token_key, token, station, connector, deadline_s)`` -> answer or None.

    None means: no answer in time, link down, or no free slot before the deadline; the
    caller then applies the offline policy. ``publish(topic, payload) -> bool`` is the
    link's QoS 1 publish (False while offline).
    """

    def __init__(self, site_id: str, publish: Callable[[str, bytes], bool], *,
                 clock: Callable[[], float] = time.time, max_in_flight: int = 8,
                 hold_s: float = 10.0, on_late: Optional[Callable[[str, Answer], None]] = None) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight: must be at least 1 (got %r)" % (max_in_flight,))
        self.site_id = messages.check_site_id(site_id)
        self._publish = publish
        self._clock = clock
        self.max_in_flight = max_in_flight
        self.hold_s = hold_s
        self.on_late = on_late
        self._prefix = "ar" + os.urandom(3).hex()
        self._n = 0
        self._by_id: Dict[str, _Question] = {}
        self._by_key: Dict[str, _Question] = {}
        self._slot_freed: Optional[asyncio.Event] = None
        # counters for status pages, tests and the benchmark
        self.sent = 0
        self.answered = 0
        self.late = 0
        self.no_slot = 0
        self.peak_in_flight = 0

    @property
    def in_flight(self) -> int:
        return len(self._by_id)

    async def ask(self, key: str, token: str, station: str, connector: Optional[int],
                  deadline_s: float) -> Optional[Answer]:
        loop = asyncio.get_running_loop()
        until = loop.time() + deadline_s
        question = self._by_key.get(key)
        if question is None:
            while len(self._by_id) >= self.max_in_flight:
                if not await self._wait_for_slot(until - loop.time()):
                    self.no_slot += 1
                    return None
                question = self._by_key.get(key)
                if question is not None:
                    break
        if question is None:
            question = self._send(key, token, station, connector)
            if question is None:
                return None
        question.waiters += 1
        try:
            return await asyncio.wait_for(asyncio.shield(question.future), max(0.0, until - loop.time()))
        except asyncio.TimeoutError:
            return None
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise                   # our caller is being cancelled
            return None                 # the question was given up (cancel_all, hold_s)
        finally:
            question.waiters -= 1

    def _send(self, key: str, token: str, station: str, connector: Optional[int]) -> Optional[_Question]:
        self._n += 1
        request_id = "%s-%d" % (self._prefix, self._n)
        body = {"request_id": request_id, "token": token, "station": station, "connector": connector}
        topic, payload = messages.build(self.site_id, "auth_request", body, request_id,
                                        int(self._clock()))
        if not self._publish(topic, payload):
            return None
        loop = asyncio.get_running_loop()
        question = _Question(request_id, key, loop.create_future())
        question.release = loop.call_later(self.hold_s, self._give_up, request_id)
        self._by_id[request_id] = question
        self._by_key[key] = question
        self.sent += 1
        self.peak_in_flight = max(self.peak_in_flight, len(self._by_id))
        return question

    async def _wait_for_slot(self, timeout_s: float) -> bool:
        if timeout_s <= 0:
            return False
        if self._slot_freed is None:
            self._slot_freed = asyncio.Event()
        event = self._slot_freed
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    def _done(self, question: _Question) -> None:
        self._by_id.pop(question.request_id, None)
        if self._by_key.get(question.key) is question:
            del self._by_key[question.key]
        if question.release is not None:
            question.release.cancel()
        if self._slot_freed is not None:
            # Wake every waiter; each re-checks the count (one slot, many waiters).
            self._slot_freed.set()
            self._slot_freed = None

    def _give_up(self, request_id: str) -> None:
        question = self._by_id.get(request_id)
        if question is not None:
            self._done(question)
            if not question.future.done():
                question.future.cancel()

    def on_reply(self, answer: Answer) -> bool:
        """An ``auth_reply`` arrived; False when it answers no outstanding question."""
        question = self._by_id.get(answer["request_id"])
        if question is None:
            log.debug("auth_reply %s answers no outstanding question", answer["request_id"])
            return False
        self._done(question)
        self.answered += 1
        if question.future.done():
            return False
        question.future.set_result(answer)
        if question.waiters == 0:
            self.late += 1
            if self.on_late is not None:
                self.on_late(question.key, answer)
        return True

    def cancel_all(self) -> None:
        for question in list(self._by_id.values()):
            self._done(question)
            if not question.future.done():
                question.future.cancel()

