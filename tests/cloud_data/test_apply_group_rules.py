"""The cloud cannot remove a group the edge's sessions still reference, nor edit or
un-archive an archived group: the whole message is refused with a code it can act on."""
from __future__ import annotations

import copy

from .cloud_samples import GUESTS, delta, snapshot
from .test_apply import error_records, published_types, send
from edge.cloud import apply
from edge.store.sessions import SessionStore

GUEST_TOKENS = [1, 3, 5, 7, 9]        # the odd tokens of snapshot(1, 10) are guests


def _remove_guests(base, version):
    d = delta(base, version, remove=GUEST_TOKENS)
    d["groups_remove"] = ["g-guests"]
    return d


def _guests(**changes):
    g = copy.deepcopy(GUESTS)
    g.update(changes)
    return g


def test_removal_refused_while_a_session_runs_or_its_record_is_unsent(edge):
    send(edge, "snapshot", snapshot(1, 10))
    sessions = SessionStore(edge.conn, outbox=edge.outbox, clock=edge.clock)
    rec, _ = sessions.start("CP002", 1, None, "T000000001", 100, 1_763_899_000,
                            group_id="g-guests")
    done = send(edge, "delta", _remove_guests(1, 2), "c-2")
    assert done.outcome == apply.REFUSED and done.error.code == "group_in_use"
    assert edge.holder.version == 1 and edge.holder.book.group("g-guests") is not None
    err = error_records(edge)[-1]
    assert err["code"] == "group_in_use" and err["value"] == "g-guests"
    assert "snapshot_request" in published_types(done)
    # the session ends, but the cloud has not got its record yet: still refused
    sessions.stop(rec["session_id"], 1_763_899_600, 900, "EVDisconnected")
    done = send(edge, "delta", _remove_guests(1, 2), "c-3")
    assert done.error is not None and done.error.code == "group_in_use"
    # a snapshot that leaves the group out is the same removal
    snap = snapshot(2, 10)
    snap["groups"] = [g for g in snap["groups"] if g["id"] != "g-guests"]
    snap["tokens"] = [t for i, t in enumerate(snap["tokens"]) if i not in GUEST_TOKENS]
    assert send(edge, "snapshot", snap, "c-4").error.code == "group_in_use"
    # once the cloud has acknowledged every session record, the removal applies
    edge.outbox.ack([r.id for r in edge.outbox.pending(1000) if r.kind == "session"])
    done = send(edge, "delta", _remove_guests(1, 2), "c-5")
    assert done.outcome == apply.APPLIED and edge.holder.book.group("g-guests") is None


def test_archived_group_keeps_everything_but_its_name(edge):
    send(edge, "snapshot", snapshot(1, 10))
    d = delta(1, 2)
    d["groups_upsert"] = [_guests(state="archived")]
    assert send(edge, "delta", d, "c-2").outcome == apply.APPLIED      # archiving is fine
    for i, change in enumerate([{"state": "active"},                  # silent un-archive
                                {"tariff": {"currency": "EUR", "energy_m_per_kwh": 999,
                                            "parking": None, "monthly_base_m": 0}},
                                {"prioritised": True}]):
        d = delta(2, 3)
        d["groups_upsert"] = [_guests(state="archived", **change)
                              if "state" not in change else _guests(**change)]
        done = send(edge, "delta", d, "c-%d" % (10 + i))
        assert done.outcome == apply.REFUSED and done.error.code == "group_archived", change
        assert edge.holder.version == 2
        assert edge.holder.book.group("g-guests").state == "archived"
    snap = snapshot(3, 10)                     # a snapshot cannot un-archive it either
    assert send(edge, "snapshot", snap, "c-20").error.code == "group_archived"
    d = delta(2, 3)
    d["groups_upsert"] = [_guests(state="archived", name="Guests (old)")]
    assert send(edge, "delta", d, "c-21").outcome == apply.APPLIED    # rename is allowed
    assert edge.holder.book.group("g-guests").name == "Guests (old)"
