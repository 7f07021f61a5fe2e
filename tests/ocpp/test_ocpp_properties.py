"""Properties (hypothesis): hostile frames never escape the framing layer; list plans
always converge to what the core wants."""
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.ocpp_gateway import framing
from edge.ocpp_gateway.local_list import ListState, apply, plan

CODES = {"1.6": {"FormationViolation", "NotImplemented", "NotSupported",
                 "TypeConstraintViolation", "PropertyConstraintViolation",
                 "OccurenceConstraintViolation"},
         "2.0.1": {"FormatViolation", "RpcFrameworkError", "MessageTypeNotSupported",
                   "NotImplemented", "NotSupported", "TypeConstraintViolation",
                   "PropertyConstraintViolation", "OccurrenceConstraintViolation"}}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=5),
    max_leaves=20)

frames = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=20),
    json_values.map(json.dumps),
    st.tuples(st.sampled_from([2, 3, 4, 5, "2"]), st.text(max_size=40) | st.integers(),
              st.sampled_from(["Heartbeat", "Authorize", "BootNotification", "StartTransaction",
                               "TransactionEvent", "Nope"]),
              json_values).map(lambda t: json.dumps(list(t))),
)


def _check_reply(reply, version):
    msg = json.loads(reply)
    assert isinstance(msg, list) and len(msg) == 5 and msg[0] == 4
    assert isinstance(msg[1], str) and msg[2] in CODES[version]
    assert isinstance(msg[3], str) and len(msg[3]) <= 255 and isinstance(msg[4], dict)


@settings(max_examples=300, deadline=None)
@given(frames, st.sampled_from(["1.6", "2.0.1"]))
def test_any_frame_is_parsed_or_gets_a_spec_error(raw, version):
    try:
        frame = framing.parse(raw, version)
    except framing.FrameError as e:
        _check_reply(e.reply, version)
        return
    assert frame.kind in ("call", "result", "error", "junk")
    if frame.kind == "call" and framing.is_known_action(frame.action, version):
        try:
            framing.check_schema(frame, version)
        except framing.FrameError as e:
            _check_reply(e.reply, version)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["1.6", "2.0.1"]),
       st.sampled_from(["Authorize", "StartTransaction", "StopTransaction", "MeterValues",
                        "StatusNotification", "BootNotification", "TransactionEvent",
                        "Heartbeat", "DataTransfer"]),
       st.dictionaries(st.sampled_from(["idTag", "idToken", "connectorId", "meterStart",
                                        "timestamp", "status", "errorCode", "evseId",
                                        "meterValue", "transactionId", "eventType",
                                        "vendorId", "chargingStation", "reason", "x"]),
                       json_values, max_size=6))
def test_schema_check_never_crashes(version, action, payload):
    frame = framing.Frame("call", "id-1", action, payload)
    if not framing.is_known_action(action, version):
        return
    try:
        framing.check_schema(frame, version)
    except framing.FrameError as e:
        _check_reply(e.reply, version)
        assert e.details["field"]


uids = st.sampled_from(["A", "B", "C", "D", "E", "F", "G"])
wanted_lists = st.lists(st.tuples(uids, st.sampled_from(["valid"]),
                                  st.none() | st.integers(1, 5), st.just("g")),
                        max_size=6, unique_by=lambda t: t[0])


@settings(max_examples=200, deadline=None)
@given(st.lists(wanted_lists, min_size=1, max_size=5), st.integers(1, 4),
       st.none() | st.integers(210, 300))
def test_list_plans_converge(steps, chunk, max_bytes):
    def size_of(entry):
        return 20 + 10 * len(entry[0]) + (30 if entry[1] else 0)
    state = ListState()
    wallbox = {}
    wallbox_version = 0
    for wanted in steps:
        last_version = state.version or 0
        for upd in plan(state, wanted, chunk, wallbox_version, size_of=size_of,
                        max_bytes=max_bytes):
            assert len(upd["entries"]) <= chunk
            if max_bytes is not None and len(upd["entries"]) > 1:
                assert sum(size_of(e) for e in upd["entries"]) <= max_bytes - 200
            assert upd["version"] > last_version
            last_version = upd["version"]
            if upd["type"] == "Full":
                wallbox = {}
            for uid, status, exp, _g in upd["entries"]:
                if status is None:
                    wallbox.pop(uid, None)
                else:
                    wallbox[uid] = (status, exp)
            wallbox_version = upd["version"]
            apply(state, upd)
        assert wallbox == {u: (s, e) for u, s, e, _g in wanted}
        assert plan(state, wanted, chunk, wallbox_version, size_of=size_of,
                    max_bytes=max_bytes) == []
