"""Deltas: applying one equals rebuilding from the changed snapshot, and a refused delta changes nothing.

The reference applies each delta to a plain snapshot dict and rebuilds the book
from scratch (full validation). The incremental path validates only changed
items and tracks references by counting, so any bookkeeping mistake shows up
as a different book or a different accept/refuse outcome.
"""
from hypothesis import HealthCheck, event, given, settings, strategies as st

from edge.core.book import GroupBook
from edge.core.errors import ValidationError, VersionMismatch
from edge.core.groups import validate_group
from edge.core.history import DIFF_FIELDS
from edge.core.topology import Site

SITE = Site.from_dict({
    "site_id": "p", "timezone": "UTC0", "grid": {"max_current_a": 50},
    "charging_groups": [{"id": "cg", "stations": [{"id": "S1", "connectors": [{"id": 1, "max_current_a": 16}]}]}],
})
KIND_OF = {"ga": "drivers", "gb": "drivers", "gc": "cards", "gd": "cards", "ge": "adhoc"}
UIDS = ["U1", "U2", "U3", "U4", "U5", "U6"]
DRIVERS = ["d1", "d2", "d3"]


def group(gid, name, prioritised, archived):
    g = {"id": gid, "name": name, "kind": KIND_OF[gid], "active_on": {"stations": ["S1"]},
         "prioritised": prioritised, "state": "archived" if archived else "active"}
    if KIND_OF[gid] == "drivers":
        g["billing"] = "record_only"
    if KIND_OF[gid] == "adhoc":
        g["tariff"] = {"currency": "EUR", "energy_m_per_kwh": 400, "parking": None, "monthly_base_m": 0}
    return g


GROUP = st.builds(group, st.sampled_from(sorted(KIND_OF)), st.sampled_from(["A", "B"]), st.booleans(),
                  st.booleans())
DRIVER = st.builds(lambda did, gid: {"id": did, "name": "N", "group": gid},
                   st.sampled_from(DRIVERS), st.sampled_from(["ga", "gb"] * 4 + ["gc"]))
TOKEN = st.builds(
    lambda uid, upper, groups, status, driver: {"uid": uid if upper else uid.lower(), "groups": groups,
                                                "status": status, "expires_s": None, "driver": driver,
                                                "provider": None},
    st.sampled_from(UIDS), st.booleans(), st.lists(st.sampled_from(["ga", "gb", "gc", "gd"] * 4 + ["ge"]),
                                                    min_size=1, max_size=2, unique=True),
    st.sampled_from(["valid", "blocked"]), st.one_of(st.none(), st.none(), st.sampled_from(DRIVERS)))
DELTA = st.fixed_dictionaries({
    "groups_upsert": st.lists(GROUP, max_size=2),
    "groups_remove": st.just([]) | st.just([]) | st.lists(st.sampled_from(sorted(KIND_OF)), max_size=1),
    "drivers_upsert": st.lists(DRIVER, max_size=2),
    "drivers_remove": st.just([]) | st.lists(st.sampled_from(DRIVERS), max_size=1),
    "tokens_upsert": st.lists(TOKEN, max_size=3),
    "tokens_remove": st.just([]) | st.lists(st.sampled_from(UIDS + ["u2", "u3"]), max_size=2),
})


def reference_apply(snap, delta):
    """The delta applied to a snapshot dict, or None where the delta must be refused."""
    groups = {g["id"]: g for g in snap["groups"]}
    drivers = {d["id"]: d for d in snap["drivers"]}
    tokens = {t["uid"].upper(): t for t in snap["tokens"]}
    for gid in delta["groups_remove"]:
        if gid not in groups:
            return None
        del groups[gid]
    ids = [g["id"] for g in delta["groups_upsert"]]
    if len(set(ids)) != len(ids) or set(ids) & set(delta["groups_remove"]):
        return None
    for g in delta["groups_upsert"]:
        if _edits_archived(groups.get(g["id"]), g):
            return None
        groups[g["id"]] = g
    for did in delta["drivers_remove"]:
        if did not in drivers:
            return None
        del drivers[did]
    ids = [d["id"] for d in delta["drivers_upsert"]]
    if len(set(ids)) != len(ids):
        return None
    for d in delta["drivers_upsert"]:
        drivers[d["id"]] = d
    for uid in delta["tokens_remove"]:
        if uid.upper() not in tokens:
            return None
        del tokens[uid.upper()]
    keys = [t["uid"].upper() for t in delta["tokens_upsert"]]
    if len(set(keys)) != len(keys):
        return None
    for t in delta["tokens_upsert"]:
        tokens[t["uid"].upper()] = t
    return {"version": snap["version"] + 1, "groups": list(groups.values()),
            "drivers": list(drivers.values()), "tokens": list(tokens.values())}


def _edits_archived(old, new):
    """An archived group may only be renamed (docs/domain.md)."""
    try:
        a = validate_group(old, "old", SITE).to_dict() if old is not None else None
        b = validate_group(new, "new", SITE).to_dict()
    except ValidationError:
        return False     # refused anyway
    return a is not None and a["state"] == "archived" and \
        any(a.get(f) != b.get(f) for f in DIFF_FIELDS if f != "name")


def build(snap):
    try:
        return GroupBook.from_snapshot(snap, SITE)
    except ValidationError:
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(DELTA, min_size=1, max_size=6))
def test_delta_equals_rebuild(deltas):
    snap = {"version": 1, "groups": [group(g, "A", False, False) for g in sorted(KIND_OF)],
            "drivers": [], "tokens": []}
    book = GroupBook.from_snapshot(snap, SITE)
    for body in deltas:
        delta = dict(body, base_version=book.version, version=book.version + 1)
        expected_snap = reference_apply(snap, body)
        expected = build(expected_snap) if expected_snap is not None else None
        before = book.to_snapshot(with_history=True)
        refs_before = [dict(getattr(book, n)) for n in ("_token_refs", "_driver_refs", "_driver_group_refs")]
        try:
            new = book.apply_delta(delta, SITE, by="p", now_s=1)
        except ValidationError:
            new = None
        assert book.to_snapshot(with_history=True) == before       # the old book never changes
        assert [getattr(book, n) for n in ("_token_refs", "_driver_refs", "_driver_group_refs")] == refs_before
        assert (new is None) == (expected is None), (body, expected_snap)
        if new is not None:
            assert new.to_snapshot() == expected.to_snapshot()
            # the reference counts agree with a count from scratch
            for name in ("_token_refs", "_driver_refs", "_driver_group_refs"):
                got = {k: v for k, v in getattr(new, name).items() if v}
                want = {k: v for k, v in getattr(expected, name).items() if v}
                assert got == want, name
                assert min(getattr(new, name).values(), default=0) >= 0, name
            event("delta applied")
            book, snap = new, expected_snap
        else:
            event("delta refused")


def test_wrong_base_is_a_version_mismatch_whatever_the_content():
    book = GroupBook.from_snapshot({"version": 5, "groups": [], "drivers": [], "tokens": []}, SITE)
    for base in (0, 4, 6, 100):
        try:
            book.apply_delta({"base_version": base, "version": base + 1, "tokens_remove": ["nope"]}, SITE)
        except VersionMismatch as e:
            assert e.current_version == 5
        else:
            raise AssertionError("applied on base %d" % base)
