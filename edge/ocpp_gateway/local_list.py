"""Differential SendLocalList planning for small wallbox lists.

A wallbox list holds a few dozen entries; the core ranks tokens (prioritised groups,
recent users, the rest) and we keep the wallbox's copy equal to the top ``max_entries``.
After the first Full update only the difference is sent: changed or new entries, and
removals (an entry without idTagInfo / idTokenInfo removes it). Updates are split into
chunks the wallbox accepts per message; each chunk gets its own version number, so a
wallbox that stops half way reports a version we can recognise.
"""
from __future__ import annotations

from typing import Any

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


def plan(state: ListState, wanted: list[tuple], chunk: int,
         wallbox_version: int | None) -> list[dict[str, Any]]:
    """Updates that bring the wallbox from ``state`` to ``wanted``.

    ``wanted``: list of (uid, status, expires_s, group_id) in relevance order, already cut
    to the wallbox's capacity. Each update: {"version", "type": "Full"|"Differential",
    "entries": [(uid, status, expires_s, group_id) | (uid, None, None, None) to remove]}.
    Returns [] when the wallbox already holds exactly this list.
    """
    chunk = max(1, int(chunk))
    target = {}
    for uid, status, expires_s, group_id in wanted:
        target[uid] = (status, expires_s, group_id)
    base = state.version if state.version is not None else 0
    known = state.version is not None and wallbox_version == state.version
    if not known:
        base = max(base, wallbox_version or 0)
        items = [(uid,) + target[uid] for uid in target]
        first, rest = items[:chunk], items[chunk:]
        updates = [{"version": base + 1, "type": "Full", "entries": first}]
        for i in range(0, len(rest), chunk):
            updates.append({"version": base + 2 + i // chunk, "type": "Differential",
                            "entries": rest[i:i + chunk]})
        return updates
    changes = []
    # removals first: a full wallbox list must make room before new entries arrive
    for uid in state.entries:
        if uid not in target:
            changes.append((uid, None, None, None))
    for uid, val in target.items():
        if state.entries.get(uid) != val:
            changes.append((uid,) + val)
    updates = []
    for i in range(0, len(changes), chunk):
        updates.append({"version": base + 1 + i // chunk, "type": "Differential",
                        "entries": changes[i:i + chunk]})
    return updates


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
