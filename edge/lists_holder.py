"""Holds the current GroupBook for everything that authorizes (OCPP gateway, local lists).

The book is immutable once built; the cloud sync builds a new one and calls
``replace(book)``. Swapping one attribute reference is atomic for readers, so a reader
that took ``holder.book`` keeps a consistent book while a new one comes in.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from edge.core.authorize import authorize, authorize_remote_start, local_list_entries
from edge.core.book import GroupBook

log = logging.getLogger(__name__)

class ListsHolder:
    def __init__(self, site: Any, book: Any = None, online: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.time) -> None:
        self._site = site
        self._online = online
        self._clock = clock
        self._subscribers: list[Callable[[Any], None]] = []
        if book is None:
            # No snapshot yet (first boot, no cloud): nobody is known; unknown tokens
            # then follow the site's offline policy like any unknown token.
            book = GroupBook.empty()
        self.book = book

    @property
    def version(self) -> int:
        return self.book.version

    @property
    def site(self) -> Any:
        return self._site

    def _now(self) -> int:
        return int(self._clock())

    def authorize(self, token: str, station_id: str, connector_id: int | None) -> Any:
        return authorize(self.book, self._site, token, station_id, connector_id, self._now(),
                         online=bool(self._online()))

    def authorize_remote_start(self, payment_ref: str, station_id: str, connector_id: int,
                               group_id: str | None = None) -> Any:
        return authorize_remote_start(self.book, self._site, payment_ref, station_id,
                                      connector_id, self._now(), group_id=group_id)

    def local_list(self, station_id: str, max_entries: int,
                   recent_uids: tuple | list = ()) -> list[tuple]:
        return local_list_entries(self.book, self._site, station_id, max_entries, self._now(),
                                  recent_uids=tuple(recent_uids))

    def replace(self, book: Any) -> None:
        """Swap in a new book, then tell subscribers (a failing subscriber is logged, not fatal)."""
        self.book = book
        for cb in list(self._subscribers):
            try:
                cb(book)
            except Exception:  # one broken listener must not stop list distribution
                log.exception("lists subscriber failed")

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(book)`` after every swap; returns an unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)
        return unsubscribe
