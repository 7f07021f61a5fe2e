"""Property: whatever mix of good, bad, out-of-order and garbage messages arrives, with
restarts in between, the lists in force (and after a restart) are exactly the result of
the accepted messages, and every refusal leaves them untouched."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.cloud import apply, codec, messages

from .cloud_samples import SITE_ID, Clock, make_site, snapshot, token
from .conftest import Edge

TOPIC = messages.down_topic(SITE_ID, "snapshot")

op_strategy = st.one_of(
    st.tuples(st.just("delta"), st.lists(st.integers(0, 15), max_size=4),
              st.lists(st.integers(0, 15), max_size=3), st.lists(st.integers(0, 15), max_size=2)),
    st.tuples(st.just("bad_delta"), st.integers(0, 3)),
    st.tuples(st.just("gap_delta"), st.integers(1, 3)),
    st.tuples(st.just("snapshot"), st.integers(0, 12)),
    st.tuples(st.just("old_snapshot"), st.integers(1, 3)),
    st.tuples(st.just("garbage"), st.binary(max_size=40)),
    st.tuples(st.just("restart"),),
)


def tokens_of(book):
    return sorted((t["uid"], t["status"]) for t in book.to_snapshot()["tokens"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op_strategy, min_size=1, max_size=14))
def test_lists_in_force_follow_only_accepted_messages(ops):
    with tempfile.TemporaryDirectory() as tmp:
        edge = Edge(Path(tmp) / "edge.db", make_site(), Clock())
        model = None  # {uid: status} of the accepted lists, None before any snapshot
        version = 0
        n = 0
        try:
            for op in ops:
                n += 1
                msg_id = "c-%d" % n
                kind = op[0]
                if kind == "restart":
                    edge.restart()
                elif kind == "snapshot":
                    snap = snapshot(version + 1, op[1])
                    done = _send(edge, "snapshot", snap, msg_id)
                    assert done.outcome == apply.APPLIED
                    version += 1
                    model = {t["uid"]: t["status"] for t in snap["tokens"]}
                elif kind == "old_snapshot":
                    done = _send(edge, "snapshot", snapshot(max(1, version - op[1]), 2), msg_id)
                    assert done.outcome in (apply.REFUSED, apply.DUPLICATE) or version == 0
                    if done.outcome == apply.APPLIED:
                        version = max(1, version - op[1])
                        model = {"T000000000": "valid", "T000000001": "valid"}
                elif kind == "delta":
                    _, add, remove, block = op
                    ups = {}
                    for i in add:
                        ups[i] = token(i, "g-guests")
                    for i in block:
                        ups[i] = token(i, "g-guests", status="blocked")
                    rm = [i for i in dict.fromkeys(remove) if i not in ups]
                    body = {"base_version": version, "version": version + 1,
                            "tokens_upsert": list(ups.values()),
                            "tokens_remove": ["T%09d" % i for i in rm]}
                    done = _send(edge, "delta", body, msg_id)
                    valid = model is not None and all("T%09d" % i in model for i in rm)
                    if valid:
                        assert done.outcome == apply.APPLIED, done
                        version += 1
                        for i in rm:
                            del model["T%09d" % i]
                        for tok in ups.values():
                            model[tok["uid"]] = tok["status"]
                    else:
                        assert done.outcome == apply.REFUSED
                        assert done.publish, "a refused delta asks for a snapshot"
                elif kind == "bad_delta":
                    body = {"base_version": version, "version": version + 1,
                            "tokens_upsert": [token(100 + j, "g-guests") for j in range(op[1])]
                            + [dict(token(99, "g-guests"), status="lost")]}
                    assert _send(edge, "delta", body, msg_id).outcome == apply.REFUSED
                elif kind == "gap_delta":
                    body = {"base_version": version + op[1], "version": version + op[1] + 1,
                            "tokens_upsert": [token(200, "g-guests")]}
                    done = _send(edge, "delta", body, msg_id)
                    assert done.outcome == apply.REFUSED and done.error.code == codec.VERSION_MISMATCH
                elif kind == "garbage":
                    assert edge.handler.handle(TOPIC, op[1]).outcome == apply.REFUSED
                assert edge.holder.version == version
                expected = sorted(model.items()) if model is not None else []
                assert tokens_of(edge.holder.book) == expected
            edge.restart()
            assert edge.holder.version == version
            assert tokens_of(edge.holder.book) == (sorted(model.items()) if model is not None else [])
        finally:
            edge.close()


def _send(edge, msg_type, body, msg_id):
    topic, payload = messages.build(SITE_ID, msg_type, body, msg_id, 1_763_900_000, validate=False)
    return edge.handler.handle(topic, payload)
