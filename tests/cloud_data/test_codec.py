"""Strict envelope decoding: every refusal is a ProtocolError with the right code."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.cloud import codec
from edge.cloud.codec import Limits, ProtocolError

BIG = 1 << 20


def env(**over):
    e = {"v": 1, "type": "delta", "id": "c-1", "site": "demo", "at_s": 100, "body": {"a": 1}}
    e.update(over)
    return e


def refused(payload, code, site="demo", max_bytes=BIG, limits=codec.DEFAULT_LIMITS):
    with pytest.raises(ProtocolError) as info:
        codec.decode_envelope(payload, max_bytes, site, limits)
    assert info.value.code == code, str(info.value)
    return info.value


def test_roundtrip():
    payload = codec.encode_envelope("delta", "c-1", "demo", 100, {"a": [1, "x", None, True]})
    e = codec.decode_envelope(payload, BIG, "demo")
    assert (e.v, e.type, e.id, e.site, e.at_s) == (1, "delta", "c-1", "demo", 100)
    assert e.body == {"a": [1, "x", None, True]} and e.size == len(payload)


@pytest.mark.parametrize("payload, what", [
    (b"\xc1", "never-used byte"),
    (b"\x92\x01", "truncated"),
    (msgpack.packb(env()) + b"\x00", "trailing byte"),
    (b"\x81\xa1a\xa2\xff\xfe", "invalid utf-8"),
    (b"\x81\x01\x01", "integer map key"),
    (b"\x82\xa1a\x01\xa1a\x02", "duplicate key"),
    (b"\x91" * 3000 + b"\xc0", "nesting"),
    (b"\xd4\x01\x01", "ext type"),
    (b"\xc4\x03abc", "binary"),
    (b"\xdd\xff\xff\xff\xff", "array claiming 4 billion items"),
    (b"", "empty"),
])
def test_malformed(payload, what):
    err = refused(payload, codec.MALFORMED)
    assert err.field == "payload", what


def test_duplicate_key_names_the_key():
    err = refused(b"\x82\xa3key\x01\xa3key\x02", codec.MALFORMED)
    assert err.value == "key" and "duplicate" in err.message


def test_size_checked_before_decoding():
    # garbage larger than the limit is reported as too large, not as malformed
    err = refused(b"\xc1" * 2000, codec.TOO_LARGE, max_bytes=1999)
    assert err.value == 2000
    assert codec.decode_envelope(codec.encode_envelope("ack", "c", "demo", 1, {}), 1999, "demo").type == "ack"


def test_string_and_item_limits():
    limits = Limits(max_str_bytes=10, max_items=6)  # the envelope itself is a map of 6
    refused(codec.encode(env(body={"a": "x" * 11})), codec.MALFORMED, limits=limits)
    refused(codec.encode(env(body={"a": [1] * 7})), codec.MALFORMED, limits=limits)
    assert codec.decode_envelope(codec.encode(env(body={"a": [1] * 6})), BIG, "demo", limits).body == {"a": [1] * 6}


@pytest.mark.parametrize("v", [2, 0, "1", 1.0, True, None])
def test_schema_version(v):
    e = env(v=v)
    err = refused(codec.encode(e) if v != 1.0 else msgpack.packb(e), codec.SCHEMA)
    assert err.field == "envelope.v" and err.ref_id == "c-1" and err.ref_type == "delta"


def test_missing_schema_version():
    e = env()
    del e["v"]
    refused(codec.encode(e), codec.SCHEMA)


def test_schema_checked_before_other_fields():
    # a v2 envelope may have any shape: it is reported as a schema problem
    refused(codec.encode({"v": 2, "kind": "whatever"}), codec.SCHEMA)


def test_unknown_envelope_fields_are_ignored_inside_schema_1():
    e = codec.decode_envelope(codec.encode(env(trace_id="t-77")), BIG, "demo")
    assert e.type == "delta" and e.id == "c-1"
    # ...but they excuse no wrong known field
    assert refused(codec.encode(env(trace_id="t", at_s="now")), codec.INVALID).field == "envelope.at_s"


@pytest.mark.parametrize("over, field, code", [
    ({"type": 5}, "envelope.type", codec.INVALID),
    ({"id": ""}, "envelope.id", codec.INVALID),
    ({"id": "x" * 65}, "envelope.id", codec.INVALID),
    ({"site": "other"}, "envelope.site", codec.WRONG_SITE),
    ({"site": 7}, "envelope.site", codec.INVALID),
    ({"at_s": -1}, "envelope.at_s", codec.INVALID),
    ({"at_s": True}, "envelope.at_s", codec.INVALID),
    ({"body": [1]}, "envelope.body", codec.INVALID),
    ({"body": None}, "envelope.body", codec.INVALID),
])
def test_envelope_fields(over, field, code):
    err = refused(codec.encode(env(**over)), code)
    assert err.field == field


def test_missing_envelope_field():
    for key in ("type", "id", "site", "at_s", "body"):
        e = env()
        del e[key]
        assert refused(codec.encode(e), codec.INVALID).field == "envelope." + key


def test_not_a_map():
    refused(codec.encode([1, 2]), codec.MALFORMED)
    refused(b"\x01", codec.MALFORMED)


def test_allowed_types():
    with pytest.raises(ProtocolError) as info:
        codec.decode_envelope(codec.encode(env(type="launch")), BIG, "demo", allowed_types=("delta",))
    assert info.value.code == codec.UNKNOWN_TYPE and info.value.ref_type == "launch"
    assert codec.decode_envelope(codec.encode(env()), BIG, "demo", allowed_types=("delta",)).type == "delta"


def test_encode_refuses_non_protocol_types():
    with pytest.raises(ValueError):
        codec.encode({"a": object()})
    with pytest.raises(ValueError):
        codec.encode({"a": 1 << 70})


def test_packed_records_message_decodes():
    body = msgpack.packb({"session_id": "s-1", "energy_wh": 10700})
    pieces = [codec.packed_record("ab-%06d" % i, "session", "s-%d" % i, 1000 + i, body) for i in range(3)]
    payload = codec.records_message_header("e-1", "demo", 5, 3) + b"".join(pieces)
    e = codec.decode_envelope(payload, BIG, "demo")
    assert e.type == "records" and e.id == "e-1" and e.at_s == 5
    assert [r["id"] for r in e.body["records"]] == ["ab-000000", "ab-000001", "ab-000002"]
    assert e.body["records"][2] == {"id": "ab-000002", "kind": "session", "key": "s-2", "at_s": 1002,
                                    "body": {"session_id": "s-1", "energy_wh": 10700}}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_protocol_error(data):
    try:
        codec.decode_envelope(data, 256, "demo")
    except ProtocolError as err:
        assert err.code in (codec.MALFORMED, codec.TOO_LARGE, codec.SCHEMA, codec.INVALID,
                            codec.WRONG_SITE)
        str(err)


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1) | st.text(max_size=20)
    | st.floats(allow_nan=False) | st.binary(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "type", "id", "site", "at_s", "body", "x"]), _values))
def test_random_envelopes_are_accepted_only_when_well_formed(obj):
    payload = msgpack.packb(obj, use_bin_type=True)
    try:
        e = codec.decode_envelope(payload, 1 << 16, "demo")
    except ProtocolError:
        return
    assert obj["v"] == 1 and obj["site"] == "demo" and isinstance(obj["body"], dict)
    assert set(obj) == {"v", "type", "id", "site", "at_s", "body"} and e.body == obj["body"]


def test_total_item_budget_bounds_memory():
    # many small containers, each well within the per-container limit
    nested = msgpack.packb([[{} for _ in range(1000)] for _ in range(100)])
    limits = Limits(max_total_items=50_000)
    err = refused(codec.encode(env(body={"a": msgpack.unpackb(nested)})), codec.MALFORMED, limits=limits)
    assert "too many items" in err.message
    ok = Limits(max_total_items=250_000)
    assert len(codec.decode_envelope(codec.encode(env(body={"a": msgpack.unpackb(nested)})), BIG, "demo",
                                     ok).body["a"]) == 100
