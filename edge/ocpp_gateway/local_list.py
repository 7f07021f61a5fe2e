"""Differential SendLocalList planning for small wallbox lists.

A wallbox list holds a few dozen entries; the core ranks tokens (prioritised groups,
recent users, the rest) and we keep the wallbox's copy equal to the top ``max_entries``.
After the first Full update only the difference is sent: changed or new entries, and
removals (an entry without idTagInfo / idTokenInfo removes it). Updates are split into
chunks the wallbox accepts per message; each chunk gets its own version number, so a
wallbox that stops half way reports a version we can recognise.
"""
from __future__ import annotations

from typing import Any, Callable

# Entry as the wallbox sees it: uid -> (status, expires_s, group_id)
Entry = tuple


class ListState:
    """Our copy of what a wallbox holds; ``version`` None = unknown (send Full)."""

    def __init__(self) -> None:
        self.version: int | None = None
        self.entries: dict[str, Entry] = {}

    def reset(self) -> None:
        self.version = None
        self.entries = {}


# Room left in a message for everything but the entries (frame, ids, version, type).
MESSAGE_OVERHEAD_BYTES = 200


def plan(state: ListState, wanted: list[tuple], chunk: int, wallbox_version: int | None,
         size_of: Callable[[tuple], int] | None = None,
         max_bytes: int | None = None) -> list[dict[str, Any]]:
    """Updates that bring the wallbox from ``state`` to ``wanted``.

    ``wanted``: list of (uid, status, expires_s, group_id) in relevance order, already cut
    to the wallbox's capacity. Each update: {"version", "type": "Full"|"Differential",
    "entries": [(uid, status, expires_s, group_id) | (uid, None, None, None) to remove]}.
    A message holds at most ``chunk`` entries and, with ``size_of`` (wire bytes of one
    entry) and ``max_bytes``, at most that many bytes (2.0.1 ``BytesPerMessage``).
    Returns [] when the wallbox already holds exactly this list.
    """
    target = {}
    for uid, status, expires_s, group_id in wanted:
        target[uid] = (status, expires_s, group_id)
    base = state.version if state.version is not None else 0
    known = state.version is not None and wallbox_version == state.version
    if not known:
        base = max(base, wallbox_version or 0)
        items = [(uid,) + target[uid] for uid in target]
        parts = _chunks(items, chunk, size_of, max_bytes) or [[]]
        return [{"version": base + 1 + i, "type": "Full" if i == 0 else "Differential",
                 "entries": part} for i, part in enumerate(parts)]
    changes = []
    # removals first: a full wallbox list must make room before new entries arrive
    for uid in state.entries:
        if uid not in target:
            changes.append((uid, None, None, None))
    for uid, val in target.items():
        if state.entries.get(uid) != val:
            changes.append((uid,) + val)
    return [{"version": base + 1 + i, "type": "Differential", "entries": part}
            for i, part in enumerate(_chunks(changes, chunk, size_of, max_bytes))]


def _chunks(items: list[tuple], chunk: int, size_of: Callable[[tuple], int] | None,
            max_bytes: int | None) -> list[list[tuple]]:
    chunk = max(1, int(chunk))
    budget = None
    if size_of is not None and max_bytes:
        budget = max(1, int(max_bytes) - MESSAGE_OVERHEAD_BYTES)
    parts: list[list[tuple]] = []
    cur: list[tuple] = []
    used = 0
    for item in items:
        size = size_of(item) if budget is not None else 0
        if cur and (len(cur) >= chunk or (budget is not None and used + size > budget)):
            parts.append(cur)
            cur, used = [], 0
        cur.append(item)        # an entry larger than the budget still goes alone
        used += size
    if cur:
        parts.append(cur)
    return parts


def apply(state: ListState, update: dict[str, Any]) -> None:
    """Record an update the wallbox accepted."""
    if update["type"] == "Full":
        state.entries = {}
    for uid, status, expires_s, group_id in update["entries"]:
        if status is None:
            state.entries.pop(uid, None)
        else:
            state.entries[uid] = (status, expires_s, group_id)
    state.version = update["version"]
