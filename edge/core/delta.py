"""Applying a cloud delta to a GroupBook without re-validating what did not change.

The dicts are copied, the changes applied, and only the changed items are
validated. Reference counts (tokens per group, tokens per driver, drivers per
group) answer "is a removed group or driver still used?" in O(1), so a
1,000-change delta on 100,000 tokens never walks the untouched tokens.
"""

from edge.core.checks import need_dict, need_int, need_items
from edge.core.errors import ValidationError, VersionMismatch
from edge.core.groups import check_one_eroaming, validate_group
from edge.core.history import check_archived_kept, diff_groups
from edge.core.tokens import D_GROUP, T_DRIVER, T_GROUPS, T_UID, parse_driver, parse_token, token_key

MAX_LIST_ITEMS = 100000
DELTA_KEYS = ("base_version", "version", "groups_upsert", "groups_remove", "drivers_upsert",
              "drivers_remove", "tokens_upsert", "tokens_remove")


def apply_delta(book, delta, site, by, now_s):
    """Validate and apply a delta on ``book`` -> the parts of the new book.

    Returns (version, groups, drivers, tokens, token_refs, driver_refs,
    driver_group_refs, history); ``book`` is never modified.
    """
    need_dict(delta, "delta")
    # Fields this version does not know are accepted and ignored (forward compatibility,
    # docs/cloud-protocol.md); the items inside the lists keep theirs.
    base = need_int(delta.get("base_version"), "base_version", 0)
    version = need_int(delta.get("version"), "version", 0)
    if version <= base:
        raise ValidationError("version", version, "must be greater than base_version %d" % base)
    if base != book.version:
        raise VersionMismatch("base_version", base, "the lists are at version %d" % book.version,
                              book.version)
    g_up = need_items(delta, "groups_upsert", "groups_upsert", MAX_LIST_ITEMS)
    g_rm = need_items(delta, "groups_remove", "groups_remove", MAX_LIST_ITEMS)
    d_up = need_items(delta, "drivers_upsert", "drivers_upsert", MAX_LIST_ITEMS)
    d_rm = need_items(delta, "drivers_remove", "drivers_remove", MAX_LIST_ITEMS)
    t_up = need_items(delta, "tokens_upsert", "tokens_upsert", MAX_LIST_ITEMS)
    t_rm = need_items(delta, "tokens_remove", "tokens_remove", MAX_LIST_ITEMS)

    groups = dict(book._groups)
    history_add = []
    removed_groups = []
    for i, gid in enumerate(g_rm):
        old = groups.get(gid) if type(gid) is str else None
        if old is None:
            raise ValidationError("groups_remove[%d]" % i, gid, "unknown group")
        del groups[gid]
        removed_groups.append(gid)
        history_add.extend(diff_groups(old, None, now_s, by))
    upserted = {}
    for i, g in enumerate(g_up):
        f = "groups_upsert[%d]" % i
        grp = validate_group(g, f, site)
        if grp.id in upserted or grp.id in removed_groups:
            raise ValidationError(f + ".id", grp.id, "group changed twice in one delta")
        old = book._groups.get(grp.id)
        if old is not None and old.kind != grp.kind:
            raise ValidationError(f + ".kind", grp.kind,
                                  "the kind of a group never changes (it is %s)" % old.kind)
        check_archived_kept(old, grp, f)
        upserted[grp.id] = grp
        groups[grp.id] = grp
        history_add.extend(diff_groups(old, grp, now_s, by))
    check_one_eroaming(groups, "groups_upsert")

    drivers = dict(book._drivers) if (d_up or d_rm) else book._drivers
    # Copy whatever this delta may change: the old book stays intact for its readers.
    dg_refs = dict(book._driver_group_refs) if (d_up or d_rm or g_rm) else book._driver_group_refs
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

    tokens = dict(book._tokens) if (t_up or t_rm) else book._tokens
    t_refs = dict(book._token_refs)
    dr_refs = dict(book._driver_refs) if (t_up or t_rm or d_rm) else book._driver_refs
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
    history = book.history + history_add if history_add else book.history
    return version, groups, drivers, tokens, t_refs, dr_refs, dg_refs, history


def _unref(tok, t_refs, dr_refs):
    for gid in tok[T_GROUPS]:
        t_refs[gid] -= 1
    if tok[T_DRIVER] is not None:
        dr_refs[tok[T_DRIVER]] -= 1
