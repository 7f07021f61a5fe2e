"""GroupBook: the user groups, drivers and tokens in force, with their history.

A book is immutable once built: ``apply_delta`` and every local operation
return a NEW book and leave the old one valid for readers in flight. Every
input is validated completely before the new book exists, so a refused
snapshot, delta or operation changes nothing.

A delta copies the dicts, applies the changes and validates only the changed
items plus the cross-references they touch; reference counts (tokens per group,
tokens per driver, drivers per group) make "is this group still used?" an O(1)
question, so a 1,000-change delta never walks 100,000 tokens.

History (``book.history``) is append-only and covers group definitions: one
entry ``{"at_s", "by", "group_id", "change", "before", "after"}`` per changed
field (``change`` is the field name: name, billing, tariff, active_on,
prioritised, state, windows) or ``create`` / ``delete`` with the whole group.
Token membership is the cloud's business and is not recorded here.
"""

from edge.core.checks import need_dict, need_id, need_int, need_list, need_str, no_unknown_keys
from edge.core.errors import ValidationError, VersionMismatch
from edge.core.groups import check_tariff_for_kind, validate_active_on, validate_group
from edge.core.tariff import copy_tariff, validate_tariff
from edge.core.tokens import (
    D_GROUP, T_DRIVER, T_GROUPS, T_UID, driver_to_dict, parse_driver, parse_token,
    token_key, token_to_dict,
)
from edge.core.windows import parse_windows

MAX_LIST_ITEMS = 100000
_SNAPSHOT_KEYS = ("version", "groups", "drivers", "tokens", "history")
_DELTA_KEYS = ("base_version", "version", "groups_upsert", "groups_remove", "drivers_upsert",
               "drivers_remove", "tokens_upsert", "tokens_remove")
_HISTORY_KEYS = ("at_s", "by", "group_id", "change", "before", "after")
_DIFF_FIELDS = ("name", "billing", "tariff", "active_on", "prioritised", "state", "windows")


def _entry(at_s, by, gid, change, before, after):
    return {"at_s": at_s, "by": by, "group_id": gid, "change": change, "before": before, "after": after}


def _diff(old, new, at_s, by):
    """History entries between two versions of a group (either may be None)."""
    if old is None:
        return [_entry(at_s, by, new.id, "create", None, new.to_dict())]
    if new is None:
        return [_entry(at_s, by, old.id, "delete", old.to_dict(), None)]
    a = old.to_dict()
    b = new.to_dict()
    return [_entry(at_s, by, new.id, f, a[f], b[f]) for f in _DIFF_FIELDS if a[f] != b[f]]


def _check_one_eroaming(groups, field):
    found = None
    for gid in sorted(groups):
        g = groups[gid]
        if g.kind == "eroaming" and g.state == "active":
            if found is not None:
                raise ValidationError(field, gid, "a site has at most one active eRoaming group (already %s)" % found)
            found = gid


def _check_by(by, now_s):
    need_str(by, "by", 100)
    need_int(now_s, "now_s", 0)


def _list(d, key, field):
    value = d.get(key)
    if value is None:
        return []
    need_list(value, field)
    if len(value) > MAX_LIST_ITEMS:
        raise ValidationError(field, len(value), "at most %d items" % MAX_LIST_ITEMS)
    return value


def _validate_history(h):
    need_list(h, "history")
    for i, e in enumerate(h):
        f = "history[%d]" % i
        need_dict(e, f)
        for k in _HISTORY_KEYS:
            if k not in e:
                raise ValidationError(f + "." + k, None, "missing")
        no_unknown_keys(e, f, _HISTORY_KEYS)
    return list(h)


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
        no_unknown_keys(snapshot, "", _SNAPSHOT_KEYS)
        version = need_int(snapshot.get("version"), "version", 0)
        groups = {}
        for i, g in enumerate(_list(snapshot, "groups", "groups")):
            grp = validate_group(g, "groups[%d]" % i, site)
            if grp.id in groups:
                raise ValidationError("groups[%d].id" % i, grp.id, "duplicate group id")
            groups[grp.id] = grp
        _check_one_eroaming(groups, "groups")
        drivers = {}
        driver_group_refs = {}
        for i, d in enumerate(_list(snapshot, "drivers", "drivers")):
            drv = parse_driver(d, "drivers", i, groups)
            if drv[0] in drivers:
                raise ValidationError("drivers[%d].id" % i, drv[0], "duplicate driver id")
            drivers[drv[0]] = drv
            driver_group_refs[drv[D_GROUP]] = driver_group_refs.get(drv[D_GROUP], 0) + 1
        tokens = {}
        token_refs = {}
        driver_refs = {}
        shared = {}
        for i, t in enumerate(_list(snapshot, "tokens", "tokens")):
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
            history = list(previous.history)
            for gid in sorted(set(previous._groups) | set(groups)):
                history.extend(_diff(previous._groups.get(gid), groups.get(gid), now_s, by))
        elif snapshot.get("history") is not None:
            history = _validate_history(snapshot["history"])
        else:
            history = []
            for gid in sorted(groups):
                history.extend(_diff(None, groups[gid], now_s, by))
        return cls(version, groups, drivers, tokens, token_refs, driver_refs, driver_group_refs, history)

    def apply_delta(self, delta, site, by="sync", now_s=0):
        """Apply a delta -> a NEW book. Raises VersionMismatch or ValidationError; self is unchanged."""
        need_dict(delta, "delta")
        no_unknown_keys(delta, "", _DELTA_KEYS)
        base = need_int(delta.get("base_version"), "base_version", 0)
        version = need_int(delta.get("version"), "version", 0)
        if version <= base:
            raise ValidationError("version", version, "must be greater than base_version %d" % base)
        if base != self.version:
            raise VersionMismatch("base_version", base, "the lists are at version %d" % self.version,
                                  self.version)
        g_up = _list(delta, "groups_upsert", "groups_upsert")
        g_rm = _list(delta, "groups_remove", "groups_remove")
        d_up = _list(delta, "drivers_upsert", "drivers_upsert")
        d_rm = _list(delta, "drivers_remove", "drivers_remove")
        t_up = _list(delta, "tokens_upsert", "tokens_upsert")
        t_rm = _list(delta, "tokens_remove", "tokens_remove")

        groups = dict(self._groups)
        history_add = []
        removed_groups = []
        for i, gid in enumerate(g_rm):
            old = groups.get(gid) if type(gid) is str else None
            if old is None:
                raise ValidationError("groups_remove[%d]" % i, gid, "unknown group")
            del groups[gid]
            removed_groups.append(gid)
            history_add.extend(_diff(old, None, now_s, by))
        upserted = {}
        for i, g in enumerate(g_up):
            f = "groups_upsert[%d]" % i
            grp = validate_group(g, f, site)
            if grp.id in upserted or grp.id in removed_groups:
                raise ValidationError(f + ".id", grp.id, "group changed twice in one delta")
            old = self._groups.get(grp.id)
            if old is not None and old.kind != grp.kind:
                raise ValidationError(f + ".kind", grp.kind,
                                      "the kind of a group never changes (it is %s)" % old.kind)
            upserted[grp.id] = grp
            groups[grp.id] = grp
            history_add.extend(_diff(old, grp, now_s, by))
        _check_one_eroaming(groups, "groups_upsert")

        drivers = dict(self._drivers) if (d_up or d_rm) else self._drivers
        dg_refs = dict(self._driver_group_refs) if (d_up or d_rm) else self._driver_group_refs
        for i, did in enumerate(d_rm):
            old = drivers.get(did) if type(did) is str else None
            if old is None:
                raise ValidationError("drivers_remove[%d]" % i, did, "unknown driver")
            del drivers[did]
            dg_refs[old[D_GROUP]] -= 1
        seen = set()
        for i, d in enumerate(d_up):
            drv = parse_driver(d, "drivers_upsert", i, groups)
            if drv[0] in seen:
                raise ValidationError("drivers_upsert[%d].id" % i, drv[0], "driver changed twice in one delta")
            seen.add(drv[0])
            old = drivers.get(drv[0])
            if old is not None:
                dg_refs[old[D_GROUP]] -= 1
            drivers[drv[0]] = drv
            dg_refs[drv[D_GROUP]] = dg_refs.get(drv[D_GROUP], 0) + 1

        tokens = dict(self._tokens) if (t_up or t_rm) else self._tokens
        t_refs = dict(self._token_refs)
        dr_refs = dict(self._driver_refs) if (t_up or t_rm or d_rm) else self._driver_refs
        for i, uid in enumerate(t_rm):
            old = tokens.pop(token_key(uid), None) if type(uid) is str else None
            if old is None:
                raise ValidationError("tokens_remove[%d]" % i, uid, "unknown token")
            _unref(old, t_refs, dr_refs)
        seen = set()
        for i, t in enumerate(t_up):
            tok = parse_token(t, "tokens_upsert", i, groups, drivers)
            key = token_key(tok[T_UID])
            if key in seen:
                raise ValidationError("tokens_upsert[%d].uid" % i, tok[T_UID], "token changed twice in one delta")
            seen.add(key)
            old = tokens.get(key)
            if old is not None:
                _unref(old, t_refs, dr_refs)
            tokens[key] = tok
            for gid in tok[T_GROUPS]:
                t_refs[gid] = t_refs.get(gid, 0) + 1
            if tok[T_DRIVER] is not None:
                dr_refs[tok[T_DRIVER]] = dr_refs.get(tok[T_DRIVER], 0) + 1

        # Cross-references the removals may have broken (unchanged items are not re-validated).
        for i, gid in enumerate(g_rm):
            if t_refs.get(gid, 0) > 0:
                raise ValidationError("groups_remove[%d]" % i, gid,
                                      "still used by %d tokens: remove or move them in the same delta" % t_refs[gid])
            if dg_refs.get(gid, 0) > 0:
                raise ValidationError("groups_remove[%d]" % i, gid,
                                      "still has %d drivers: remove or move them in the same delta" % dg_refs[gid])
            t_refs.pop(gid, None)
            dg_refs.pop(gid, None)
        for i, did in enumerate(d_rm):
            if dr_refs.get(did, 0) > 0 and did not in drivers:
                raise ValidationError("drivers_remove[%d]" % i, did,
                                      "still used by %d tokens" % dr_refs[did])
            if did not in drivers:
                dr_refs.pop(did, None)
        history = self.history + history_add if history_add else self.history
        return GroupBook(version, groups, drivers, tokens, t_refs, dr_refs, dg_refs, history)

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
        return snap

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
        if type(uid) is not str:
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
        return GroupBook(self.version, groups, self._drivers, self._tokens, self._token_refs,
                         self._driver_refs, self._driver_group_refs, self.history + entries)

    def _existing(self, gid, editable=True):
        g = self._groups.get(gid) if type(gid) is str else None
        if g is None:
            raise ValidationError("group_id", gid, "unknown group")
        if editable and g.state == "archived":
            raise ValidationError("group_id", gid, "the group is archived: it can be renamed or deleted only")
        return g

    def create_group(self, group, site, by, now_s):
        _check_by(by, now_s)
        grp = validate_group(group, "group", site)
        if grp.id in self._groups:
            raise ValidationError("group.id", grp.id, "a group with this id exists")
        groups = dict(self._groups)
        groups[grp.id] = grp
        _check_one_eroaming(groups, "group.kind")
        return self._with_group(grp, _diff(None, grp, now_s, by))

    def rename_group(self, gid, name, by, now_s):
        _check_by(by, now_s)
        old = self._existing(gid, editable=False)
        new = old.replace(name=need_str(name, "name", 100))
        return self._with_group(new, _diff(old, new, now_s, by))

    def set_tariff(self, gid, tariff, by, now_s):
        """New tariff for FUTURE sessions: a running session keeps the copy it started with."""
        _check_by(by, now_s)
        old = self._existing(gid)
        t = None if tariff is None else validate_tariff(tariff, "tariff")
        check_tariff_for_kind(old.kind, old.billing, t, "tariff")
        new = old.replace(tariff=t)
        return self._with_group(new, _diff(old, new, now_s, by))

    def set_active_on(self, gid, active_on, site, by, now_s):
        _check_by(by, now_s)
        old = self._existing(gid)
        on = validate_active_on(active_on, "active_on", site)
        new = old.replace(on_site=on[0], on_cgroups=on[1], on_stations=on[2], on_connectors=on[3])
        return self._with_group(new, _diff(old, new, now_s, by))

    def set_prioritised(self, gid, prioritised, by, now_s):
        _check_by(by, now_s)
        old = self._existing(gid)
        if prioritised is not True and prioritised is not False:
            raise ValidationError("prioritised", prioritised, "must be true or false")
        new = old.replace(prioritised=prioritised)
        return self._with_group(new, _diff(old, new, now_s, by))

    def set_windows(self, gid, windows, by, now_s):
        _check_by(by, now_s)
        old = self._existing(gid)
        if old.kind != "eroaming":
            raise ValidationError("windows", windows, "only eRoaming groups have availability windows")
        new = old.replace(windows=parse_windows(windows, "windows"))
        return self._with_group(new, _diff(old, new, now_s, by))

    def archive_group(self, gid, by, now_s):
        """From now on the group authorizes nothing; its tokens, drivers and history stay."""
        _check_by(by, now_s)
        old = self._existing(gid, editable=False)
        if old.state == "archived":
            raise ValidationError("group_id", gid, "the group is already archived")
        new = old.replace(state="archived")
        return self._with_group(new, _diff(old, new, now_s, by))

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
                    tok = (tok[0], rest, tok[2], tok[3], tok[4], tok[5])
                if tok[T_DRIVER] is not None and tok[T_DRIVER] not in drivers:
                    tok = (tok[0], tok[1], tok[2], tok[3], None, tok[5])
                tokens[key] = tok
        t_refs, dr_refs, dg_refs = _count_refs(tokens, drivers)
        return GroupBook(self.version, groups, drivers, tokens, t_refs, dr_refs, dg_refs,
                         self.history + _diff(old, None, now_s, by))


def _unref(tok, t_refs, dr_refs):
    for gid in tok[T_GROUPS]:
        t_refs[gid] -= 1
    if tok[T_DRIVER] is not None:
        dr_refs[tok[T_DRIVER]] -= 1


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
