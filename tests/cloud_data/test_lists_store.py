"""Persisted lists: base snapshot + deltas, replayed through the domain core on load."""
from __future__ import annotations

import copy
import logging

import pytest

from edge.cloud import codec
from edge.core.book import GroupBook
from edge.core.topology import Site
from edge.store.db import open_db
from edge.store.lists import FORM_BODY, ListsStore

from .cloud_samples import SITE_DICT, delta, snapshot


def test_nothing_stored(conn, site):
    store = ListsStore(conn)
    assert store.stored_version() is None and store.load_book(site) is None
    assert store.load_site_limit() is None


def test_snapshot_and_deltas_replay_after_reopen(db_path, site):
    conn = open_db(db_path)
    store = ListsStore(conn)
    book = GroupBook.from_snapshot(snapshot(4, 30), site)
    store.save_snapshot(4, codec.encode(snapshot(4, 30)), FORM_BODY)
    for base in (4, 5, 6):
        d = delta(base, base + 1, add=[100 + base], remove=[base])
        book = book.apply_delta(d, site)
        store.record_delta(base, base + 1, codec.encode(d), book)
    conn.close()
    store = ListsStore(open_db(db_path))
    loaded = store.load_book(site)
    assert loaded.version == 7 and store.stored_version() == 7 and store.delta_count() == 3
    assert loaded.to_snapshot() == book.to_snapshot()


def test_delta_must_follow_the_stored_version(conn, site):
    store = ListsStore(conn)
    store.save_snapshot(4, codec.encode(snapshot(4, 3)), FORM_BODY)
    with pytest.raises(ValueError):
        store.save_delta(3, 5, codec.encode(delta(3, 5)), FORM_BODY)
    assert store.stored_version() == 4 and store.delta_count() == 0


def test_record_delta_on_a_foreign_base_stores_the_whole_book(conn, site):
    store = ListsStore(conn)
    store.save_snapshot(1, codec.encode(snapshot(1, 3)), FORM_BODY)
    book = GroupBook.from_snapshot(snapshot(8, 5), site).apply_delta(delta(8, 9, add=[50]), site)
    store.record_delta(8, 9, codec.encode(delta(8, 9, add=[50])), book)
    assert store.delta_count() == 0 and store.load_book(site).to_snapshot() == book.to_snapshot()


def test_compacts_when_many_deltas_piled_up(conn, site):
    store = ListsStore(conn, compact_after=3)
    book = GroupBook.from_snapshot(snapshot(1, 5), site)
    store.save_snapshot(1, codec.encode(snapshot(1, 5)), FORM_BODY)
    for base in range(1, 6):
        d = delta(base, base + 1, add=[200 + base])
        book = book.apply_delta(d, site)
        store.record_delta(base, base + 1, codec.encode(d), book)
    assert store.delta_count() == 5
    assert store.load_book(site).to_snapshot() == book.to_snapshot()
    assert store.delta_count() == 0 and store.stored_version() == 6
    assert store.load_book(site).to_snapshot() == book.to_snapshot()


def test_corrupt_blob_is_ignored_with_a_warning(conn, site, caplog):
    store = ListsStore(conn)
    store.save_snapshot(2, b"\xc1garbage", FORM_BODY)
    with caplog.at_level(logging.WARNING, logger="edge.store.lists"):
        assert store.load_book(site) is None
    assert "unreadable" in caplog.text


def test_lists_invalid_for_a_changed_site_are_ignored(conn, site, caplog):
    store = ListsStore(conn)
    snap = snapshot(2, 3)
    snap["groups"][1]["active_on"]["stations"] = ["CP002"]
    store.save_snapshot(2, codec.encode(snap), FORM_BODY)
    d = copy.deepcopy(SITE_DICT)
    d["charging_groups"][0]["stations"].pop()  # CP002 was removed from the configuration
    with caplog.at_level(logging.WARNING, logger="edge.store.lists"):
        assert store.load_book(Site.from_dict(d)) is None
    assert "no longer valid" in caplog.text
    assert store.load_book(site).version == 2  # with the original site it still loads


def test_site_limit_persisted(db_path):
    conn = open_db(db_path)
    ListsStore(conn).save_site_limit({"limit_id": "a", "max_da": 100, "expires_s": 5})
    conn.close()
    conn = open_db(db_path)
    store = ListsStore(conn)
    assert store.load_site_limit() == {"limit_id": "a", "max_da": 100, "expires_s": 5}
    store.save_site_limit(None)
    assert store.load_site_limit() is None


def test_change_history_survives_restarts_without_restore_entries(db_path, site, clock):
    """The history says who changed what when; a restart must neither lose it nor add to it."""
    from edge.cloud.apply import DownstreamHandler
    from edge.lists_holder import ListsHolder
    from edge.store.outbox import Outbox

    from .cloud_samples import SITE_ID, Rng

    def open_edge():
        conn = open_db(db_path)
        store = ListsStore(conn)
        holder = ListsHolder(site, store.load_book(site), clock=clock)
        handler = DownstreamHandler(site, SITE_ID, holder, store, Outbox(conn, clock=clock, rng=Rng()),
                                    clock=clock)
        return conn, store, holder, handler

    conn, store, holder, handler = open_edge()
    down = "evc/%s/down/lists" % SITE_ID
    assert handler.handle(down, codec.encode_envelope("snapshot", "c-1", SITE_ID, 0, snapshot(1, 4))).outcome == "applied"
    renamed = delta(1, 2)
    staff = copy.deepcopy(snapshot(1, 4)["groups"][0])
    staff["name"] = "Staff (renamed)"
    renamed["groups_upsert"] = [staff]
    clock.advance(60)
    assert handler.handle(down, codec.encode_envelope("delta", "c-2", SITE_ID, 0, renamed)).outcome == "applied"
    before = list(holder.book.history)
    assert [e["change"] for e in before] == ["create", "create", "name"]
    assert before[-1]["by"] == "cloud:c-2" and before[-1]["after"] == "Staff (renamed)"
    conn.close()

    for _ in range(2):
        conn, store, holder, handler = open_edge()
        assert holder.book.history == before
        conn.close()
