"""Upstream batches: limits, window, acks, re-sends, live records beside a backlog."""
from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from edge.cloud import codec, messages
from edge.cloud.batching import UpstreamBatcher
from edge.store.db import open_db
from edge.store.outbox import Outbox

from .cloud_samples import SITE_ID, Clock, Rng


def ids_in(batch):
    e = codec.decode_envelope(batch.payload, 1 << 20, SITE_ID)
    messages.validate_records(e.body)
    assert e.type == "records" and batch.topic == "evc/demo/up/records"
    ids = [r["id"] for r in e.body["records"]]
    assert ids == batch.record_ids
    return ids


def fill(outbox, n, key=lambda i: "s-%d" % i, body=lambda i: {"n": i}):
    return [outbox.enqueue("session", key(i), body(i)) for i in range(n)]


def make(outbox, clock, **kw):
    kw.setdefault("ids", messages.MessageIds("e0"))
    return UpstreamBatcher(outbox, SITE_ID, clock=clock, **kw)


def test_batches_hold_at_most_max_records_in_order(outbox, clock):
    ids = fill(outbox, 1200)
    b = make(outbox, clock, window=10)
    batches = b.due_batches()
    assert [len(x.record_ids) for x in batches] == [500, 500, 200]
    assert sum((ids_in(x) for x in batches), []) == ids
    assert b.next_batch() is None


def test_batches_respect_the_byte_limit(outbox, clock):
    fill(outbox, 40, body=lambda i: {"pad": "x" * 10_000})
    b = make(outbox, clock, window=100, max_bytes=70 * 1024)
    batches = b.due_batches()
    assert all(len(x.payload) <= 70 * 1024 for x in batches)
    assert sum(len(x.record_ids) for x in batches) == 40 and len(batches) >= 6


def test_window_and_acks(outbox, clock):
    fill(outbox, 50)
    b = make(outbox, clock, window=2, max_records=10)
    first, second = b.next_batch(), b.next_batch()
    assert b.next_batch() is None and b.in_flight == 2
    assert b.ack(first.record_ids[:5]) == 5
    assert b.next_batch() is None  # half a batch acknowledged does not free its slot
    assert b.ack(first.record_ids[5:]) == 5
    third = b.next_batch()
    assert ids_in(third)[0] == outbox.record_id(21)
    assert outbox.count() == 40 and b.in_flight == 2


def test_reconnect_sends_every_unacked_record_again_in_order(outbox, clock):
    ids = fill(outbox, 30)
    b = make(outbox, clock, window=3, max_records=10)
    sent = b.due_batches()
    b.ack(sent[1].record_ids)
    b.on_connect()
    again = sum((ids_in(x) for x in b.due_batches()), [])
    assert again == ids[:10] + ids[20:30]


def test_unacked_batch_is_sent_again_after_timeout(outbox, clock):
    ids = fill(outbox, 5)
    b = make(outbox, clock, window=1, resend_after_s=60)
    assert ids_in(b.next_batch()) == ids
    clock.advance(59)
    assert b.next_batch() is None
    clock.advance(1)
    assert ids_in(b.next_batch()) == ids


def test_live_records_are_not_starved_by_a_backlog(outbox, clock):
    fill(outbox, 3000, key=lambda i: "old-%d" % i)
    b = make(outbox, clock, window=100, max_records=100, live_share=0.25)
    live = outbox.enqueue("session", "new-1", {"state": "started"})
    first = b.next_batch()
    ids = ids_in(first)
    assert ids[-1] == live and len(ids) == 100
    assert ids[:99] == [outbox.record_id(s) for s in range(1, 100)]


def test_live_record_waits_for_the_same_sessions_backlog(outbox, clock):
    fill(outbox, 1000, key=lambda i: "s-%d" % i)
    b = make(outbox, clock, window=100, max_records=100)
    # a completion for a session whose start is deep in the backlog
    late = outbox.enqueue("session", "s-700", {"state": "completed"})
    other = outbox.enqueue("session", "s-new", {"state": "started"})
    order = []
    for batch in b.due_batches():
        order.extend(ids_in(batch))
    assert order.index(late) > order.index(outbox.record_id(701))
    # a later live record with another key does not jump ahead of the blocked one
    assert order.index(other) > order.index(late)
    assert sorted(order, key=lambda r: outbox.seq_of(r)) != order  # live did overtake the backlog
    assert set(order) == {r.id for r in outbox.pending(2000)}


def test_unacked_records_survive_restart_and_are_resent_in_order(db_path):
    clock = Clock()
    conn = open_db(db_path)
    box = Outbox(conn, clock=clock, rng=Rng())
    ids = fill(box, 25, key=lambda i: "s-%d" % (i % 5))
    b = make(box, clock, window=5, max_records=10)
    first = b.next_batch()
    b.ack(first.record_ids)
    b.next_batch()  # sent, never acknowledged: the edge is killed now
    conn.close()

    conn = open_db(db_path)
    box = Outbox(conn, clock=clock, rng=Rng())
    b = make(box, clock, window=5, max_records=10)
    resent = sum((ids_in(x) for x in b.due_batches()), [])
    assert resent == ids[10:]
    conn.close()


@settings(max_examples=150, deadline=None)
@example([("enq", 1), ("enq", 2), ("enq", 0), ("reconnect", 0), ("enq", 0), ("send", 0)])
@given(st.lists(st.tuples(st.sampled_from(["enq", "enq", "enq", "send", "ack", "ack_some", "reconnect"]),
                          st.integers(0, 2)), max_size=60))
def test_every_record_delivered_and_per_key_order_kept(ops):
    clock = Clock()
    box = Outbox(open_db(":memory:"), clock=clock, rng=Rng())
    b = UpstreamBatcher(box, SITE_ID, clock=clock, ids=messages.MessageIds("p"),
                        window=2, max_records=3, live_share=0.34)
    key_of = {}
    first_seen = []  # record ids in the order the cloud first received them
    seen = set()
    in_flight = []

    def receive(batch):
        for rid in ids_in(batch):
            if rid not in seen:
                seen.add(rid)
                first_seen.append(rid)
        in_flight.append(batch)

    for op, arg in ops:
        if op == "enq":
            rid = box.enqueue("session", "k%d" % arg, {"a": arg})
            key_of[rid] = "k%d" % arg
        elif op == "send":
            batch = b.next_batch()
            if batch is not None:
                receive(batch)
        elif op == "ack" and in_flight:
            b.ack(in_flight.pop(0).record_ids)
        elif op == "ack_some" and in_flight:
            b.ack(in_flight[0].record_ids[:1])
        elif op == "reconnect":
            in_flight.clear()
            b.on_connect()
    # finally the link is good: everything drains
    b.on_connect()
    in_flight.clear()
    for _ in range(200):
        batch = b.next_batch()
        if batch is None:
            break
        receive(batch)
        b.ack(batch.record_ids)
    assert box.count() == 0
    assert set(first_seen) == set(key_of)
    for key in set(key_of.values()):
        mine = [r for r in first_seen if key_of[r] == key]
        assert mine == sorted(mine, key=box.seq_of), key


def test_nothing_is_read_inside_an_open_transaction(conn, outbox, clock):
    from edge.store.db import transaction
    b = make(outbox, clock)
    try:
        with transaction(conn):
            outbox.enqueue("session", "s-1", {"state": "started"}, conn=conn)
            assert b.next_batch() is None  # it may still roll back
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert b.next_batch() is None and outbox.count() == 0
    rid = outbox.enqueue("session", "s-2", {})
    assert ids_in(b.next_batch()) == [rid]


def test_record_stranded_behind_the_cursor_is_sent_again(outbox, clock):
    ids = fill(outbox, 4)
    b = make(outbox, clock, window=4, max_records=2)
    first, second = b.next_batch(), b.next_batch()
    b.ack(first.record_ids)
    # the cloud acknowledged only one record of the second batch and then the batch
    # got dropped from the window (e.g. after a resend timeout)
    b.ack(second.record_ids[:1])
    b._in_flight.clear()
    b._batch_of.clear()
    assert ids_in(b.next_batch()) == [ids[3]]
