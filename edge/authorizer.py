"""Who may charge: the local lists first, then the authorization cache, then the cloud,
then the site's offline policy (docs/domain.md, section 6).

1. A token in the local lists is decided by them alone (blocked stays blocked),
   except when they accept it through a group with ``check_online``: then, while the
   cloud link is up, the cloud is asked as in 3 and its refusal wins; no answer in
   time or the link down, the lists' acceptance stands.
2. A token the cloud accepted before is decided from that answer until it expires,
   online or not (``AuthCache``, persisted); a refusal is remembered briefly
   (``negative_s``) so one driver tapping a card ten times asks the cloud once.
3. Otherwise, while the cloud link is up, the cloud is asked (edge/cloud/auth_requests.py)
   and waited for at most ``deadline_s``: the wallbox must get its answer well within
   its own timeout.
4. No answer in time, no free request slot, or the link down: the site's
   ``offline_unknown_tokens`` policy decides, as for any unknown token offline.

Every decision itself is made by the domain core (``edge.core.authorize``): the
cloud's answer names a group, and that group must still be active here, open now and
admit the token's provider, exactly like a token from the lists.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Optional

from edge.core.authorize import authorize, authorize_answer, authorize_checked
from edge.core.errors import ValidationError
from edge.core.tariff import validate_tariff
from edge.core.tokens import is_ascii, token_key

log = logging.getLogger(__name__)

Ask = Callable[[str, str, str, Optional[int], float], Awaitable[Optional[dict]]]

MAX_NEGATIVE = 10_000


class Authorizer:
    """``await authorize(token, station_id, connector_id)`` -> core ``Decision``.

    ``lists``: the ListsHolder; ``cache``: an ``edge.store.auth_cache.AuthCache`` or
    None; ``ask(key, token, station, connector, deadline_s)`` the cloud question (None:
    no online authorization); ``online()`` whether the cloud link is up.
    """

    def __init__(self, lists: Any, *, cache: Any = None, ask: Optional[Ask] = None,
                 online: Callable[[], bool] = lambda: False, clock: Callable[[], float] = time.time,
                 deadline_s: float = 3.0, negative_s: float = 30.0,
                 max_validity_s: int = 30 * 86400) -> None:
        self.lists = lists
        self.cache = cache
        self.ask = ask
        self.online = online
        self._clock = clock
        self.deadline_s = deadline_s
        self.negative_s = negative_s
        self.max_validity_s = max_validity_s
        self._negative: "OrderedDict[str, dict]" = OrderedDict()
        # token -> until when the offline policy decides without asking again: an OCPP
        # 1.6 StartTransaction right after an unanswered Authorize must not wait twice
        self._unanswered: "OrderedDict[str, float]" = OrderedDict()
        # listed tokens of check_online groups: key -> (remembered until, answer)
        self._recent_listed: "OrderedDict[str, tuple]" = OrderedDict()
        self._warned_slow = False
        # counters for status pages and tests
        self.asked = 0
        self.answered_online = 0
        self.from_cache = 0
        self.fallbacks = 0
        self.checked_listed = 0     # listed tokens of check_online groups asked online

    def _now(self) -> int:
        return int(self._clock())

    async def authorize(self, token: str, station_id: str, connector_id: Optional[int]) -> Any:
        book = self.lists.book
        site = self.lists.site
        if type(token) is not str or not token or not is_ascii(token):
            return self.lists.authorize(token, station_id, connector_id)
        if book.token_tuple(token) is not None:
            return await self._listed(token, station_id, connector_id)
        key = token_key(token)
        now = self._now()
        known = self.known_answer(key, now)
        if known is not None:
            self.from_cache += 1
            return authorize_answer(book, site, known, token, station_id, connector_id, now)
        if self.ask is None or not self.online():
            return self.lists.authorize(token, station_id, connector_id)
        if self._unanswered.get(key, 0) > now:
            self.fallbacks += 1
            return authorize(book, site, token, station_id, connector_id, now, online=False)
        self.asked += 1
        reply = await self.ask(key, token, station_id, connector_id, self.deadline_s)
        now = self._now()
        answer = self.take_reply(key, reply, now) if reply is not None else None
        if answer is None:
            self._no_answer(key, now)
            return authorize(book, site, token, station_id, connector_id, now, online=False)
        self._answered()
        return authorize_answer(self.lists.book, site, answer, token, station_id, connector_id, now)

    async def _listed(self, token: str, station_id: str, connector_id: Optional[int]) -> Any:
        """A token in the lists: their decision, checked online when its group says so."""
        local = self.lists.authorize(token, station_id, connector_id)
        if not local.accepted or self.ask is None:
            return local
        group = self.lists.book.group(local.group_id)
        if group is None or not group.check_online:
            return local
        return self._briefly(await self._checked(token, station_id, connector_id, local))

    def _briefly(self, decision: Any) -> Any:
        """An acceptance through a check_online group tells the wallbox to keep it in
        its own authorization cache for ``negative_s`` at most (1.6 expiryDate, 2.0.1
        cacheExpiryDateTime): a wallbox that starts from its cache would not ask."""
        if decision.accepted:
            cap = self._now() + int(self.negative_s)
            decision.expires_s = cap if decision.expires_s is None else min(decision.expires_s, cap)
        return decision

    async def _checked(self, token: str, station_id: str, connector_id: Optional[int], local: Any) -> Any:
        key = token_key(token)
        now = self._now()
        recent = self._recent_listed.get(key)
        recent = recent[1] if recent is not None and now < recent[0] else None
        if recent is None:
            late = self._negative.get(key)      # a refusal that came after a deadline
            recent = late if late is not None and now < late["expires_s"] else None
        if recent is not None:
            # Answered a moment ago: the 1.6 StartTransaction after its Authorize, or a
            # driver tapping again, does not ask twice; a fresh refusal holds offline too.
            self.from_cache += 1
            return authorize_checked(self.lists.book, self.lists.site, recent, token, station_id,
                                     connector_id, now)
        if not self.online():
            return local
        if self._unanswered.get(key, 0) > now:
            self.fallbacks += 1
            return local
        self.asked += 1
        self.checked_listed += 1
        reply = await self.ask(key, token, station_id, connector_id, self.deadline_s)
        now = self._now()
        answer = self._answer_of(reply, now) if reply is not None else None
        if answer is None:
            self._no_answer(key, now)
            return self.lists.authorize(token, station_id, connector_id)
        self._answered()
        # Remembered briefly only, and not in the persisted cache: offline the lists
        # vouch for a listed token, and a cache slot is for an unlisted roaming one.
        until = now + int(self.negative_s)
        if answer["expires_s"] is not None:
            until = min(until, int(answer["expires_s"]))
        self._recent_listed[key] = (until, answer)
        self._recent_listed.move_to_end(key)
        while len(self._recent_listed) > MAX_NEGATIVE:
            self._recent_listed.popitem(last=False)
        return authorize_checked(self.lists.book, self.lists.site, answer, token, station_id, connector_id, now)

    def _answered(self) -> None:
        self.answered_online += 1
        if self._warned_slow:
            log.info("online authorization: the cloud answers again")
            self._warned_slow = False

    def _no_answer(self, key: str, now: int) -> None:
        self.fallbacks += 1
        self._unanswered[key] = now + max(1, int(self.deadline_s * 2))
        self._unanswered.move_to_end(key)
        while len(self._unanswered) > MAX_NEGATIVE:
            self._unanswered.popitem(last=False)
        if not self._warned_slow:
            log.warning("online authorization: no usable answer from the cloud within %.1f s; "
                        "the offline policy decides until it answers again", self.deadline_s)
            self._warned_slow = True

    def known_answer(self, key: str, now_s: int) -> Optional[dict]:
        """A cached answer still valid at ``now_s`` (positive from the cache, negative
        from the brief in-memory list), else None."""
        negative = self._negative.get(key)
        if negative is not None:
            if now_s < negative["expires_s"]:
                return negative
            del self._negative[key]
        if self.cache is not None:
            return self.cache.get(key, now_s)
        return None

    def take_reply(self, key: str, reply: dict, now_s: Optional[int] = None) -> Optional[dict]:
        """Turn a validated ``auth_reply`` body into a cached answer; None when unusable.

        Also called for answers that arrive after the deadline (``AuthRequests.on_late``):
        the driver's next attempt then finds it.
        """
        now = self._now() if now_s is None else now_s
        answer = self._answer_of(reply, now)
        if answer is None:
            return None
        if answer["accepted"]:
            if self.cache is not None and answer["expires_s"] > now:
                try:
                    self.cache.put(key, answer)
                except Exception:       # a full disk must not turn the answer into a refusal
                    log.exception("online authorization: could not store the answer in the cache")
            self._negative.pop(key, None)
            self._unanswered.pop(key, None)
        else:
            until = now + int(self.negative_s)
            if answer["expires_s"] is not None:
                until = min(until, int(answer["expires_s"]))
            answer["expires_s"] = until
            self._negative[key] = answer
            self._negative.move_to_end(key)
            while len(self._negative) > MAX_NEGATIVE:
                self._negative.popitem(last=False)
        return answer

    def _answer_of(self, reply: dict, now_s: int) -> Optional[dict]:
        """The answer of a validated ``auth_reply`` body; None when its tariff is unusable."""
        answer = {"accepted": reply["status"] == "accepted", "reason": reply["reason"],
                  "group_id": reply.get("group_id"), "provider": reply.get("provider"),
                  "expires_s": reply.get("expires_s"), "tariff": None}
        if answer["accepted"]:
            answer["expires_s"] = min(int(answer["expires_s"]), now_s + self.max_validity_s)
        if reply.get("tariff") is not None:
            try:
                answer["tariff"] = validate_tariff(reply["tariff"], "tariff")
            except ValidationError as exc:
                log.warning("online authorization: the cloud's tariff is not usable (%s); answer ignored",
                            str(exc)[:200])
                return None
        return answer

    def on_late(self, key: str, reply: dict) -> None:
        self.take_reply(key, reply)


def from_config(lists: Any, conn: Any, cloud_cfg: Any, clock: Callable[[], float] = time.time) -> Authorizer:
    """The service's authorizer: lists only without a cloud or with ``online_auth``
    off; else with the persisted cache and the configured deadline (the cloud link is
    joined by ``connect`` once it exists)."""
    if cloud_cfg is None or not cloud_cfg.online_auth:
        return Authorizer(lists, clock=clock)
    from edge.store.auth_cache import AuthCache
    cache = AuthCache(conn, cloud_cfg.auth_cache_entries, now_s=int(clock()))
    return Authorizer(lists, cache=cache, clock=clock, deadline_s=cloud_cfg.auth_deadline_s,
                      negative_s=cloud_cfg.auth_negative_s)


def connect(authorizer: Authorizer, link: Any) -> None:
    """Ask ``link`` (a CloudLink) about unknown tokens while it is online."""
    if authorizer.cache is None:
        return                              # online authorization is off
    authorizer.ask = link.auth.ask
    authorizer.online = lambda: link.online
    link.auth.on_late = authorizer.on_late
