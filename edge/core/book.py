"""GroupBook: the user groups, drivers and tokens in force, with their history.

A book is immutable once built: ``apply_delta`` and every local operation
return a NEW book and leave the old one valid for readers in flight. Every
input is validated completely before the new book exists, so a refused
snapshot, delta or operation changes nothing.

Deltas are applied by edge.core.delta (only changed items are validated).
History (``book.history``, see edge.core.history) is append-only and covers
group definitions; token membership is the cloud's business and is not
recorded there.
"""

from edge.core.checks import extra_fields, need_dict, need_int, need_items, need_str, with_extra
from edge.core.delta import MAX_LIST_ITEMS, apply_delta
from edge.core.errors import ValidationError
from edge.core.groups import check_one_eroaming, check_tariff_for_kind, validate_active_on, validate_group
from edge.core.history import check_archived_kept, diff_groups, validate_history
from edge.core.tariff import validate_tariff
from edge.core.tokens import (
    D_GROUP, T_DRIVER, T_GROUPS, T_UID, driver_to_dict, is_ascii, parse_driver, parse_token,
    token_key, token_to_dict,
)
from edge.core.windows import parse_windows

_SNAPSHOT_KEYS = ("version", "groups", "drivers", "tokens", "history")


def _check_by(by, now_s):
    need_str(by, "by", 100)
    need_int(now_s, "now_s", 0)


class GroupBook:
    def __init__(self, version, groups, drivers, tokens, token_refs, driver_refs,
                 driver_group_refs, history):
        self.version = version
        self._groups = groups                  # gid -> Group
        self._drivers = drivers                # did -> (id, name, group)
        self._tokens = tokens                  # upper-cased uid -> token tuple
        self._token_refs = token_refs          # gid -> number of tokens in the group
        self._driver_refs = driver_refs        # did -> number of tokens of the driver
        self._driver_group_refs = driver_group_refs  # gid -> number of drivers in the group
        self.history = history
        self._members = None                   # gid -> sorted token keys, built on demand
        self.extra = None                      # snapshot fields this version does not know

    # ---- building ------------------------------------------------------------------

    @classmethod
    def empty(cls, version=0):
        return cls(version, {}, {}, {}, {}, {}, {}, [])

    @classmethod
    def from_snapshot(cls, snapshot, site, by="sync", now_s=0, previous=None):
        """Validate a complete snapshot and build a book (never half-built).

        With ``previous`` (the book it replaces) the history continues and gets
        one entry per changed group; without it, a ``history`` in the snapshot
        (as written by ``to_snapshot(with_history=True)``) is restored, else
        every group gets a ``create`` entry.
        """
        need_dict(snapshot, "snapshot")
        extra = extra_fields(snapshot, "snapshot", _SNAPSHOT_KEYS)
        version = need_int(snapshot.get("version"), "version", 0)
        groups = {}
        for i, g in enumerate(need_items(snapshot, "groups", "groups", MAX_LIST_ITEMS)):
            grp = validate_group(g, "groups[%d]" % i, site)
            if grp.id in groups:
                raise ValidationError("groups[%d].id" % i, grp.id, "duplicate group id")
            groups[grp.id] = grp
        check_one_eroaming(groups, "groups")
        drivers = {}
        driver_group_refs = {}
        for i, d in enumerate(need_items(snapshot, "drivers", "drivers", MAX_LIST_ITEMS)):
            drv = parse_driver(d, "drivers", i, groups)
            if drv[0] in drivers:
                raise ValidationError("drivers[%d].id" % i, drv[0], "duplicate driver id")
            drivers[drv[0]] = drv
            driver_group_refs[drv[D_GROUP]] = driver_group_refs.get(drv[D_GROUP], 0) + 1
        tokens = {}
        token_refs = {}
        driver_refs = {}
        shared = {}
        for i, t in enumerate(need_items(snapshot, "tokens", "tokens", MAX_LIST_ITEMS)):
            tok = parse_token(t, "tokens", i, groups, drivers, shared)
            key = token_key(tok[T_UID])
            if key in tokens:
                raise ValidationError("tokens[%d].uid" % i, tok[T_UID],
                                      "duplicate token (uids are compared without case)")
            tokens[key] = tok
            for gid in tok[T_GROUPS]:
                token_refs[gid] = token_refs.get(gid, 0) + 1
            if tok[T_DRIVER] is not None:
                driver_refs[tok[T_DRIVER]] = driver_refs.get(tok[T_DRIVER], 0) + 1
        if previous is not None:
            for i, g in enumerate(snapshot["groups"]):
                check_archived_kept(previous._groups.get(g["id"]), groups[g["id"]],
                                    "groups[%d]" % i)
            history = list(previous.history)
            for gid in sorted(set(previous._groups) | set(groups)):
                history.extend(diff_groups(previous._groups.get(gid), groups.get(gid), now_s, by))
        elif snapshot.get("history") is not None:
            history = validate_history(snapshot["history"])
        else:
            history = []
            for gid in sorted(groups):
                history.extend(diff_groups(None, groups[gid], now_s, by))
        book = cls(version, groups, drivers, tokens, token_refs, driver_refs, driver_group_refs, history)
        book.extra = extra
        return book

    def apply_delta(self, delta, site, by="sync", now_s=0):
        """Apply a delta -> a NEW book. Raises VersionMismatch or ValidationError; self is unchanged."""
        return self._keep_extra(GroupBook(*apply_delta(self, delta, site, by, now_s)))

    def _keep_extra(self, book):
        book.extra = self.extra
        return book

    def to_snapshot(self, with_history=False):
        snap = {
            "version": self.version,
            "groups": [self._groups[gid].to_dict() for gid in sorted(self._groups)],
            # Sorted so the same book gives the same snapshot on every platform
            # (MicroPython dicts do not keep insertion order).
            "drivers": [driver_to_dict(self._drivers[k]) for k in sorted(self._drivers)],
            "tokens": [token_to_dict(self._tokens[k]) for k in sorted(self._tokens)],
        }
        if with_history:
            snap["history"] = list(self.history)
        return with_extra(snap, self.extra)

    # ---- reading ------------------------------------------------------------------

    def group(self, gid):
        return self._groups.get(gid)

    def groups(self):
        """All groups, sorted by id (the same order on every platform)."""
        return [self._groups[gid] for gid in sorted(self._groups)]

    def token(self, uid):
        """The token as a dict (uids compare without case), or None."""
        tok = self.token_tuple(uid)
        return None if tok is None else token_to_dict(tok)

    def token_tuple(self, uid):
        if type(uid) is not str or not is_ascii(uid):
            return None
        return self._tokens.get(token_key(uid))

    def token_count(self):
        return len(self._tokens)

    def driver(self, did):
        d = self._drivers.get(did)
        return None if d is None else driver_to_dict(d)

    def drivers(self):
        return [driver_to_dict(self._drivers[k]) for k in sorted(self._drivers)]

    def tokens_in_group(self, gid):
        """Token keys of a group, sorted (built once per book, for local lists)."""
        if self._members is None:
            members = {}
            for key, tok in self._tokens.items():
                for g in tok[T_GROUPS]:
                    lst = members.get(g)
                    if lst is None:
                        lst = members[g] = []
                    lst.append(key)
            for lst in members.values():
                lst.sort()
            self._members = members
        return self._members.get(gid, ())

    def tokens_by_key(self):
        """The internal key -> token tuple dict (read only; see edge.core.tokens for indexes)."""
        return self._tokens

    # ---- local operations (each returns a new book and records history) ------------

    def _with_group(self, grp, entries):
        groups = dict(self._groups)
        groups[grp.id] = grp
        return self._keep_extra(GroupBook(self.version, groups, self._drivers, self._tokens,
                                          self._token_refs, self._driver_refs,
                                          self._driver_group_refs, self.history + entries))

    def _existing(self, gid, editable=True):
        g = self._groups.get(gid) if type(gid) is str else None
        if g is None:
            raise ValidationError("group_id", gid, "unknown group")
        if editable and g.state == "archived":
            raise ValidationError("group_id", gid, "the group is archived: it can be renamed or deleted only")
        return g

    def create_group(self, group, site, by, now_s):
        _check_by(by, now_s)
        grp = validate_group(group, "group", site, strict=True)
        if grp.id in self._groups:
            raise ValidationError("group.id", grp.id, "a group with this id exists")
        groups = dict(self._groups)
        groups[grp.id] = grp
        check_one_eroaming(groups, "group.kind")
        return self._with_group(grp, diff_groups(None, grp, now_s, by))

    def rename_group(self, gid, name, by, now_s):
        _check_by(by, now_s)
        old = self._existing(gid, editable=False)
        new = old.replace(name=need_str(name, "name", 100))
        return self._with_group(new, diff_groups(old, new, now_s, by))

    def set_tariff(self, gid, tariff, by, now_s):
        """New tariff for FUTURE sessions: a running session keeps the copy it started with."""
        _check_by(by, now_s)
        old = self._existing(gid)
        t = None if tariff is None else validate_tariff(tariff, "tariff")
        check_tariff_for_kind(old.kind, old.billing, t, "tariff")
        new = old.replace(tariff=t)
        return self._with_group(new, diff_groups(old, new, now_s, by))

    def set_active_on(self, gid, active_on, site, by, now_s):
        _check_by(by, now_s)
        old = self._existing(gid)
        on = validate_active_on(active_on, "active_on", site)
        new = old.replace(on_site=on[0], on_cgroups=on[1], on_stations=on[2], on_connectors=on[3])
        return self._with_group(new, diff_groups(old, new, now_s, by))

    def set_prioritised(self, gid, prioritised, by, now_s):
        _check_by(by, now_s)
        old = self._existing(gid)
        if prioritised is not True and prioritised is not False:
            raise ValidationError("prioritised", prioritised, "must be true or false")
        new = old.replace(prioritised=prioritised)
        return self._with_group(new, diff_groups(old, new, now_s, by))

    def set_windows(self, gid, windows, by, now_s):
        _check_by(by, now_s)
        old = self._existing(gid)
        if old.kind != "eroaming":
            raise ValidationError("windows", windows, "only eRoaming groups have availability windows")
        new = old.replace(windows=parse_windows(windows, "windows"))
        return self._with_group(new, diff_groups(old, new, now_s, by))

    def archive_group(self, gid, by, now_s):
        """From now on the group authorizes nothing; its tokens, drivers and history stay."""
        _check_by(by, now_s)
        old = self._existing(gid, editable=False)
        if old.state == "archived":
            raise ValidationError("group_id", gid, "the group is already archived")
        new = old.replace(state="archived")
        return self._with_group(new, diff_groups(old, new, now_s, by))

    def delete_group(self, gid, session_count, by, now_s):
        """Delete a group no session ever used; its drivers go, its tokens leave it.

        Tokens left without any group are removed. Refused while
        ``session_count`` (sessions recorded through the group) is above 0:
        archive such a group instead.
        """
        _check_by(by, now_s)
        old = self._existing(gid, editable=False)
        need_int(session_count, "session_count", 0)
        if session_count > 0:
            raise ValidationError("group_id", gid,
                                  "%d sessions reference this group: archive it instead" % session_count)
        groups = dict(self._groups)
        del groups[gid]
        drivers = {}
        for did, d in self._drivers.items():
            if d[D_GROUP] != gid:
                drivers[did] = d
        tokens = self._tokens
        if self._token_refs.get(gid, 0) > 0 or len(drivers) != len(self._drivers):
            tokens = {}
            for key, tok in self._tokens.items():
                if gid in tok[T_GROUPS]:
                    rest = tuple(g for g in tok[T_GROUPS] if g != gid)
                    if not rest:
                        continue
                    tok = (tok[0], rest, tok[2], tok[3], tok[4], tok[5], tok[6])
                if tok[T_DRIVER] is not None and tok[T_DRIVER] not in drivers:
                    tok = (tok[0], tok[1], tok[2], tok[3], None, tok[5], tok[6])
                tokens[key] = tok
        t_refs, dr_refs, dg_refs = _count_refs(tokens, drivers)
        return self._keep_extra(GroupBook(self.version, groups, drivers, tokens, t_refs, dr_refs,
                                          dg_refs, self.history + diff_groups(old, None, now_s, by)))


def _count_refs(tokens, drivers):
    t_refs = {}
    dr_refs = {}
    dg_refs = {}
    for tok in tokens.values():
        for gid in tok[T_GROUPS]:
            t_refs[gid] = t_refs.get(gid, 0) + 1
        if tok[T_DRIVER] is not None:
            dr_refs[tok[T_DRIVER]] = dr_refs.get(tok[T_DRIVER], 0) + 1
    for d in drivers.values():
        dg_refs[d[D_GROUP]] = dg_refs.get(d[D_GROUP], 0) + 1
    return t_refs, dr_refs, dg_refs
