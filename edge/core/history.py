"""The append-only change history of user groups.

One entry per changed field: ``{"at_s", "by", "group_id", "change", "before",
"after"}`` where ``change`` is the field name (name, billing, tariff,
active_on, prioritised, state, windows) or ``create`` / ``delete`` with the
whole group as ``after`` / ``before``.
"""

from edge.core.checks import need_dict, need_list, no_unknown_keys
from edge.core.errors import GroupArchived, ValidationError

HISTORY_KEYS = ("at_s", "by", "group_id", "change", "before", "after")
DIFF_FIELDS = ("name", "billing", "tariff", "active_on", "prioritised", "state", "windows", "providers")


def entry(at_s, by, gid, change, before, after):
    return {"at_s": at_s, "by": by, "group_id": gid, "change": change, "before": before, "after": after}


def diff_groups(old, new, at_s, by):
    """History entries between two versions of a group (either may be None)."""
    if old is None:
        return [entry(at_s, by, new.id, "create", None, new.to_dict())]
    if new is None:
        return [entry(at_s, by, old.id, "delete", old.to_dict(), None)]
    a = old.to_dict()
    b = new.to_dict()
    # ``providers`` is only present on eRoaming groups that list them
    return [entry(at_s, by, new.id, f, a.get(f), b.get(f)) for f in DIFF_FIELDS if a.get(f) != b.get(f)]


def validate_history(h):
    need_list(h, "history")
    for i, e in enumerate(h):
        f = "history[%d]" % i
        need_dict(e, f)
        for k in HISTORY_KEYS:
            if k not in e:
                raise ValidationError(f + "." + k, None, "missing")
        no_unknown_keys(e, f, HISTORY_KEYS)
    return list(h)


def check_archived_kept(old, new, field):
    """An archived group stays archived and unchanged but for its name.

    Archiving is how a group with sessions leaves: its tariff, where it is active and
    its state are what those sessions were recorded under. A cloud that edits or
    silently un-archives it is refused (errors.GroupArchived).
    """
    if old is None or old.state != "archived" or new is None:
        return
    a = old.to_dict()
    b = new.to_dict()
    for f in DIFF_FIELDS:
        if f != "name" and a.get(f) != b.get(f):
            raise GroupArchived(field + "." + f, b.get(f),
                                "group %s is archived: only its name may change"
                                " (create a new group instead)" % old.id)
