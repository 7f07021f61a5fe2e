"""Bad input on the wire: the right CallError, and the connection stays up."""
import json

import pytest
import websockets
from ocpp_wallbox import basic, recv_reply

CREDS = {"1.6": ("CP16", "secret-16", "ocpp1.6"), "2.0.1": ("CP201", "secret-201", "ocpp2.0.1")}


async def _raw(port, version):
    sid, pw, proto = CREDS[version]
    return await websockets.connect("ws://127.0.0.1:%d/%s" % (port, sid), subprotocols=[proto],
                                    additional_headers=basic(sid, pw), proxy=None)


async def _ask(ws, frame):
    await ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))
    return await recv_reply(ws)


async def _still_up(ws, n="alive"):
    reply = await _ask(ws, [2, n, "Heartbeat", {}])
    assert reply[0] == 3 and reply[1] == n and "currentTime" in reply[2]


CASES = [
    # (frame, 1.6 answer, 2.0.1 answer) as (message id, error code)
    ("this is not json", ("-1", "FormationViolation"), ("-1", "RpcFrameworkError")),
    ('{"a": 1}', ("-1", "FormationViolation"), ("-1", "RpcFrameworkError")),
    ("[2]", ("-1", "FormationViolation"), ("-1", "RpcFrameworkError")),
    ('[2, 17, "Heartbeat", {}]', ("-1", "FormationViolation"), ("-1", "RpcFrameworkError")),
    ('[7, "m1", "Heartbeat", {}]', ("m1", "FormationViolation"), ("m1", "MessageTypeNotSupported")),
    ('[2, "m2", "Heartbeat"]', ("m2", "FormationViolation"), ("m2", "FormatViolation")),
    ('[2, "m3", "Heartbeat", []]', ("m3", "FormationViolation"), ("m3", "FormatViolation")),
    ('[2, "m4", "MakeCoffee", {}]', ("m4", "NotImplemented"), ("m4", "NotImplemented")),
]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_malformed_frames_get_spec_errors(gateway, version):
    ws = await _raw(gateway.port, version)
    for frame, want16, want201 in CASES:
        reply = await _ask(ws, frame)
        want = want16 if version == "1.6" else want201
        assert reply[0] == 4, frame
        assert (reply[1], reply[2]) == want, frame
        assert isinstance(reply[3], str) and isinstance(reply[4], dict)
    await _still_up(ws)
    await ws.close()


async def test_known_action_without_handler_is_not_supported(gateway):
    ws = await _raw(gateway.port, "1.6")
    # a valid 1.6 action the central system never receives
    reply = await _ask(ws, [2, "r1", "Reset", {"type": "Soft"}])
    assert reply[:3] == [4, "r1", "NotSupported"]
    await _still_up(ws)
    await ws.close()


@pytest.mark.parametrize("version,frame,code,field", [
    ("1.6", [2, "s1", "StartTransaction", {"connectorId": "one", "idTag": "STAFF1",
                                          "meterStart": 0, "timestamp": "2025-06-02T06:00:00Z"}],
     "TypeConstraintViolation", "connectorId"),
    ("1.6", [2, "s2", "StartTransaction", {"connectorId": 1, "meterStart": 0,
                                          "timestamp": "2025-06-02T06:00:00Z"}],
     "OccurenceConstraintViolation", "idTag"),
    ("1.6", [2, "s3", "Authorize", {"idTag": "X" * 21}], "PropertyConstraintViolation", "idTag"),
    ("1.6", [2, "s4", "StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                            "status": "Dancing"}],
     "PropertyConstraintViolation", "status"),
    ("1.6", [2, "s5", "Heartbeat", {"extra": 1}], "FormationViolation", "(payload)"),
    ("2.0.1", [2, "t1", "Authorize", {"idToken": {"idToken": "A"}}],
     "OccurrenceConstraintViolation", "idToken.type"),
    ("2.0.1", [2, "t2", "Authorize", {"idToken": {"idToken": 5, "type": "ISO14443"}}],
     "TypeConstraintViolation", "idToken.idToken"),
])
async def test_schema_failures_name_the_field(gateway, version, frame, code, field):
    ws = await _raw(gateway.port, version)
    reply = await _ask(ws, frame)
    assert reply[:3] == [4, frame[1], code]
    assert reply[4]["field"] == field
    await _still_up(ws)
    await ws.close()


async def test_schema_failure_changes_nothing(gateway, sessions):
    ws = await _raw(gateway.port, "1.6")
    await _ask(ws, [2, "s9", "StartTransaction", {"connectorId": 1, "idTag": "STAFF1",
                                                 "meterStart": -5.5, "timestamp": "x"}])
    assert sessions.open_sessions() == []
    await ws.close()


async def test_duplicate_message_id_answered_once(gateway, sessions):
    ws = await _raw(gateway.port, "1.6")
    start = [2, "dup-1", "StartTransaction", {"connectorId": 1, "idTag": "STAFF1",
                                              "meterStart": 0,
                                              "timestamp": "2025-06-02T06:00:00Z"}]
    first = await _ask(ws, start)
    assert first[0] == 3
    await ws.send(json.dumps(start))           # same id again on the same connection
    await _still_up(ws, "after-dup")           # the next frame we get is the heartbeat's
    assert len(sessions.open_sessions()) == 1
    await ws.close()
    # on a new connection the lost answer is repeated, still without a second session
    ws = await _raw(gateway.port, "1.6")
    again = await _ask(ws, start)
    assert again == first
    assert len(sessions.open_sessions()) == 1
    await ws.close()


async def test_responses_to_nothing_are_ignored(gateway):
    ws = await _raw(gateway.port, "2.0.1")
    await ws.send(json.dumps([3, "never-asked", {}]))
    await ws.send(json.dumps([4, "never-asked", "GenericError", "", {}]))
    await ws.send(json.dumps([3, "short"]))
    await _still_up(ws)
    await ws.close()


async def test_flood_is_answered_in_order_and_others_are_served(gateway):
    gateway.rate_per_s = 5000     # pacing itself is covered by test_token_bucket_*
    flood = await _raw(gateway.port, "2.0.1")
    other = await _raw(gateway.port, "1.6")
    n = 300
    for i in range(n):
        await flood.send(json.dumps([2, "f%d" % i, "Heartbeat", {}]))
    await _still_up(other, "other")            # a flooding wallbox does not starve others
    ids = []
    for _ in range(n):
        ids.append((await recv_reply(flood))[1])
    assert ids == ["f%d" % i for i in range(n)]
    await _still_up(flood)
    await flood.close()
    await other.close()


async def test_oversized_frame_closes_only_that_connection(gateway):
    ws = await _raw(gateway.port, "2.0.1")
    other = await _raw(gateway.port, "1.6")
    await ws.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "x", "data": "y" * 70000}]))
    with pytest.raises(websockets.ConnectionClosed) as e:
        await recv_reply(ws)
    assert e.value.rcvd.code == 1009          # message too big
    await _still_up(other)
    await other.close()


def test_token_bucket_paces_after_the_burst():
    from edge.ocpp_gateway.link import TokenBucket
    t = [0.0]
    b = TokenBucket(rate_per_s=10, burst=3, clock=lambda: t[0])
    assert [b.wait_s() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.wait_s() == pytest.approx(0.1)      # 4th frame in the same instant: wait
    assert b.wait_s() == pytest.approx(0.2)
    t[0] = 10.0                                  # long quiet period refills to the burst
    assert [b.wait_s() for _ in range(3)] == [0.0, 0.0, 0.0]


async def test_reused_id_with_other_content_is_a_new_message(gateway, sessions):
    """Wallboxes often number messages from 1 again after a reboot."""
    ws = await _raw(gateway.port, "1.6")
    a = await _ask(ws, [2, "1", "StartTransaction", {"connectorId": 1, "idTag": "STAFF1",
                                                     "meterStart": 0,
                                                     "timestamp": "2025-06-02T06:00:00Z"}])
    await ws.close()
    ws = await _raw(gateway.port, "1.6")
    b = await _ask(ws, [2, "1", "StartTransaction", {"connectorId": 2, "idTag": "STAFF2",
                                                     "meterStart": 0,
                                                     "timestamp": "2025-06-02T07:00:00Z"}])
    assert a[2]["transactionId"] != b[2]["transactionId"]
    assert len(sessions.open_sessions()) == 2
    await ws.close()


async def test_unsolicited_answers_do_not_accumulate(gateway):
    ws = await _raw(gateway.port, "2.0.1")
    for i in range(200):
        await ws.send(json.dumps([3, "x%d" % i, {"status": "Accepted"}]))
    await _still_up(ws)
    assert gateway.stations["CP201"].link.cp._response_queue.qsize() == 0
    await ws.close()


@pytest.mark.parametrize("payload,field", [
    ('{"connectorId": 1, "idTag": "A", "meterStart": 1000000000000000000000000000000,'
     ' "timestamp": "2025-06-02T06:00:00Z"}', "meterStart"),
    ('{"connectorId": NaN, "idTag": "A", "meterStart": 0, "timestamp": "2025-06-02T06:00:00Z"}',
     "connectorId"),
])
async def test_out_of_range_numbers_are_refused_with_field(gateway, sessions, payload, field):
    ws = await _raw(gateway.port, "1.6")
    reply = await _ask(ws, '[2,"n1","StartTransaction",%s]' % payload)
    assert reply[:3] == [4, "n1", "PropertyConstraintViolation"]
    assert reply[4]["field"] == field
    assert sessions.open_sessions() == []
    await _still_up(ws)
    await ws.close()
