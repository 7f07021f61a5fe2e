"""The wallbox's local authorization list (OCPP 1.6 and 2.0.1 alike).

An update is checked completely before anything changes: a list that would
exceed the wallbox's capacity, or an entry that is malformed, fails the whole
update and leaves the old list and version in place.
"""
from __future__ import annotations

from dataclasses import dataclass

from .clock import parse_iso

STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx", "Unknown",
            "NoCredit", "NotAllowedTypeOfEVSE", "NotAtThisLocation", "NotAtThisTime")


class ListError(ValueError):
    def __init__(self, field_name: str, value, message: str) -> None:
        super().__init__("%s: %s (got %r)" % (field_name, message, value))
        self.field = field_name
        self.value = value


@dataclass(frozen=True)
class Entry:
    status: str
    expires_s: float | None = None


class LocalList:
    def __init__(self, max_entries: int = 48, max_per_message: int = 25) -> None:
        self.max_entries = max_entries
        self.max_per_message = max_per_message
        self.version = 0
        self.entries: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, uid: str, now_s: float) -> str | None:
        """The status the list gives `uid` at `now_s` ('Expired' past its date), or None."""
        entry = self.entries.get(uid)
        if entry is None:
            return None
        if entry.status == "Accepted" and entry.expires_s is not None and now_s >= entry.expires_s:
            return "Expired"
        return entry.status

    def apply(self, version: int, full: bool, items: list[tuple[str, Entry | None]]) -> None:
        """Apply an update; `None` as entry removes the uid (differential only)."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise ListError("version", version, "must be an integer >= 0")
        if len(items) > self.max_per_message:
            raise ListError("local_authorization_list", len(items),
                            "more entries than %d per message" % self.max_per_message)
        new = {} if full else dict(self.entries)
        for uid, entry in items:
            if entry is None:
                new.pop(uid, None)
            else:
                new[uid] = entry
        if len(new) > self.max_entries:
            raise ListError("local_authorization_list", len(new),
                            "the list would exceed its capacity of %d" % self.max_entries)
        self.entries = new
        self.version = version


def entry_from_info(info, path: str) -> Entry | None:
    """Build an Entry from an idTagInfo / idTokenInfo dict (snake_case) or None."""
    if info is None:
        return None
    if not isinstance(info, dict):
        raise ListError(path, info, "must be an object")
    status = info.get("status")
    if status not in STATUSES:
        raise ListError(path + ".status", status, "unknown status")
    expiry = info.get("expiry_date") or info.get("cache_expiry_date_time")
    expires_s = None
    if expiry is not None:
        try:
            expires_s = parse_iso(expiry)
        except ValueError:
            raise ListError(path + ".expiry_date", expiry, "must be an ISO 8601 date-time") from None
    return Entry(status, expires_s)
