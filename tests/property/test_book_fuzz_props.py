"""Hostile snapshots and deltas: one random corruption anywhere -> ValidationError or a valid book, nothing else.

No TypeError, KeyError or AttributeError may escape the core: the cloud sync
turns ValidationError into an error record and keeps the old lists; any other
exception would be a crash path.
"""
import copy
import os
import sys

from hypothesis import HealthCheck, given, settings, strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core"))
from test_domain_data import build_site, snapshot_dict  # noqa: E402

from edge.core.book import GroupBook  # noqa: E402
from edge.core.errors import ValidationError  # noqa: E402

SITE = build_site()
JUNK = [None, True, False, -1, 0, 2 ** 70, 1.5, float("nan"), "", " ", "x" * 300, "\u00ff\u0000", [], {}, [[]],
        {"a": []}, ["g-staff"], [["CP001", 1]], "g-staff", "CP001", 1]


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _corrupt(doc, path, action, junk):
    doc = copy.deepcopy(doc)
    if not path:
        return junk
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "extra" and isinstance(parent, dict):
        parent["zz_unknown"] = junk
    else:
        parent[last] = junk
    return doc


@st.composite
def corrupted(draw, doc):
    paths = list(_paths(doc))
    path = draw(st.sampled_from(paths))
    action = draw(st.sampled_from(["replace", "replace", "delete", "extra"]))
    return _corrupt(doc, path, action, draw(st.sampled_from(JUNK)))


def _only_validation_errors(fn):
    try:
        return fn()
    except ValidationError as e:
        text = str(e)
        assert text.startswith(e.field + ": ") and len(text) < 400, text
        return None


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted(snapshot_dict()))
def test_corrupted_snapshots(snap):
    book = _only_validation_errors(lambda: GroupBook.from_snapshot(snap, SITE))
    if book is not None:
        again = GroupBook.from_snapshot(book.to_snapshot(), SITE)
        assert again.to_snapshot() == book.to_snapshot()


DELTA = {"base_version": 12, "version": 13,
         "groups_upsert": [dict(snapshot_dict()["groups"][1], name="Renamed")],
         "groups_remove": [],
         "drivers_upsert": [{"id": "d-18", "name": "Max", "group": "g-staff"}],
         "drivers_remove": [],
         "tokens_upsert": [{"uid": "NEW1", "groups": ["g-guests", "g-staff"], "status": "valid",
                            "expires_s": 1800000000, "driver": "d-18", "provider": None}],
         "tokens_remove": ["CARD0001"]}


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted(DELTA))
def test_corrupted_deltas(delta):
    book = GroupBook.from_snapshot(snapshot_dict(), SITE)
    before = book.to_snapshot(with_history=True)
    new = _only_validation_errors(lambda: book.apply_delta(delta, SITE))
    assert book.to_snapshot(with_history=True) == before
    if new is not None:
        again = GroupBook.from_snapshot(new.to_snapshot(), SITE)
        assert again.to_snapshot() == new.to_snapshot()


OPS = ["create", "rename", "tariff", "active_on", "prioritised", "windows", "archive", "delete"]
GIDS = ["g-staff", "g-guests", "g-adhoc", "g-roam", "nope"] + JUNK


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(OPS), st.sampled_from(GIDS), st.sampled_from(JUNK), st.sampled_from(["installer", "", 5]),
       st.sampled_from([0, 100, -1, None]))
def test_local_operations_with_junk(op, gid, arg, by, now_s):
    book = GroupBook.from_snapshot(snapshot_dict(), SITE)
    before = book.to_snapshot(with_history=True)
    calls = {
        "create": lambda: book.create_group(arg, SITE, by, now_s),
        "rename": lambda: book.rename_group(gid, arg, by, now_s),
        "tariff": lambda: book.set_tariff(gid, arg, by, now_s),
        "active_on": lambda: book.set_active_on(gid, arg, SITE, by, now_s),
        "prioritised": lambda: book.set_prioritised(gid, arg, by, now_s),
        "windows": lambda: book.set_windows(gid, arg, by, now_s),
        "archive": lambda: book.archive_group(gid, by, now_s),
        "delete": lambda: book.delete_group(gid, arg, by, now_s),
    }
    new = _only_validation_errors(calls[op])
    assert book.to_snapshot(with_history=True) == before
    if new is not None:
        assert by == "installer" and now_s in (0, 100)
        # every real change is in the history; a no-op (same value again) adds nothing
        assert len(new.history) > len(book.history) or new.to_snapshot() == book.to_snapshot()
        again = GroupBook.from_snapshot(new.to_snapshot(), SITE)
        assert again.to_snapshot() == new.to_snapshot()
