"""The upstream rules of edge/cloud/upstream.py on their own, with explicit times:
coalescing, sequence numbers, deadbands, heartbeat, and the limit on requested fulls."""
from edge.cloud.upstream import StatusStream, TelemetryStream


def station(sid, status="Available", connected=True):
    return {"id": sid, "connected": connected, "protocol": "ocpp1.6",
            "connectors": [{"id": 1, "status": status, "error": None}]}


def test_changes_within_a_window_go_up_together_once_per_window():
    s = StatusStream("ab12cd34", every_s=5)
    s.replace_all([station("CP%03d" % i, connected=False) for i in range(50)])
    assert s.full(-100)["seq"] == 1
    sent = []
    t = 0.0
    for i in range(50):                     # 50 stations connect over 10 s
        t += 0.2
        s.update(station("CP%03d" % i))
        s.update(station("CP%03d" % i, "Preparing"))
        body = s.take(t)
        if body is not None:
            sent.append(body)
    body = s.take(t + 5)
    sent.append(body)
    # One message per 5 s window (the first change goes at once), nothing twice.
    assert [b["seq"] for b in sent] == [2, 3, 4]
    assert [e["id"] for e in sent[0]["stations"]] == ["CP000"]     # after a quiet time: at once
    ids = [e["id"] for b in sent for e in b["stations"]]
    assert sorted(ids) == ["CP%03d" % i for i in range(50)] and len(set(ids)) == 50
    assert all(e["connectors"][0]["status"] == "Preparing" for b in sent for e in b["stations"])
    assert not any(b["full"] for b in sent)
    assert s.take(t + 100) is None          # nothing changed since


def test_a_repeated_or_reverted_status_sends_nothing():
    s = StatusStream("ab12cd34", every_s=5)
    s.replace_all([station("CP001")])
    s.full(0)
    assert not s.update(station("CP001"))           # the same StatusNotification again
    assert s.due_at() is None
    s.update(station("CP001", "Faulted"))
    s.update(station("CP001"))                      # and back within the window
    assert s.take(1) is None and s.seq == 1


def test_a_requested_full_is_limited_to_one_per_interval():
    s = StatusStream("ab12cd34", every_s=5, full_min_interval_s=30)
    s.replace_all([station("CP001")])
    s.full(0)
    s.request_full("c-1")
    assert s.take(10) is None                       # 30 s after the last full at the earliest
    s.request_full("c-2")
    body = s.take(30)
    assert body["full"] and body["request_id"] == "c-2" and body["stations"] == [station("CP001")]
    s.request_full("c-3")
    assert s.due_at() == 60


def sample(drawn=(100, 100, 100), grid=(200, 210, 190), limit=160, session="s-1", state="normal"):
    return {"state": state, "reason": None, "grid_da": list(grid), "external_limit_da": None,
            "paused": [],
            "allocations": [
                {"station": "CP001", "connector": 1, "limit_da": limit, "phases": 3,
                 "drawn_da": list(drawn), "session_id": session},
                {"station": "CP002", "connector": 1, "limit_da": 0, "phases": 3,
                 "drawn_da": None, "session_id": None}]}


def test_telemetry_deadbands_heartbeat_and_changed_connectors_only():
    t = TelemetryStream("ab12cd34", heartbeat_s=900, step_da=10, grid_step_da=20)
    first = t.offer(sample(), 0)
    assert first["full"] and len(first["allocations"]) == 2 and first["seq"] == 1
    # Noise below the deadbands: nothing, until the heartbeat.
    for k in range(1, 90):
        assert t.offer(sample(drawn=(100 + k % 7, 99, 104), grid=(200 + k % 15, 210, 190)), k * 10) is None
    beat = t.offer(sample(drawn=(103, 99, 104)), 900)
    assert not beat["full"] and beat["allocations"] == [] and beat["seq"] == 2
    # A car's current moved by a step: only that connector goes up.
    moved = t.offer(sample(drawn=(112, 99, 104)), 910)
    assert [a["station"] for a in moved["allocations"]] == ["CP001"]
    # A slow drift adds up against what was last sent, not the previous sample.
    assert t.offer(sample(drawn=(118, 99, 104)), 920) is None
    assert t.offer(sample(drawn=(123, 99, 104)), 930)["allocations"][0]["drawn_da"] == [123, 99, 104]
    # The grid by its own step; any limit, session or state change at once.
    assert t.offer(sample(drawn=(123, 99, 104), grid=(221, 210, 190)), 940)["allocations"] == []
    assert t.offer(sample(drawn=(123, 99, 104), grid=(221, 210, 190), limit=150), 950) is not None
    # A limit by the same step; a pause at once however small.
    assert t.offer(sample(drawn=(123, 99, 104), grid=(221, 210, 190), limit=146), 955) is None
    assert t.offer(sample(drawn=(123, 99, 104), grid=(221, 210, 190), limit=150,
                          state="failsafe"), 960)["state"] == "failsafe"
    low = sample(drawn=(123, 99, 104), grid=(221, 210, 190), limit=6, state="failsafe")
    assert t.offer(low, 970)["allocations"][0]["limit_da"] == 6
    paused = sample(drawn=(123, 99, 104), grid=(221, 210, 190), limit=0, state="failsafe")
    assert t.offer(paused, 980)["allocations"][0]["limit_da"] == 0
    assert t.seq == 9


def test_telemetry_is_whole_after_reset_or_request_and_when_a_connector_goes_away():
    t = TelemetryStream("ab12cd34", heartbeat_s=900, step_da=10, grid_step_da=20,
                        full_min_interval_s=30)
    t.offer(sample(), 0)
    t.reset()                                       # a (re)connect
    assert t.offer(sample(), 10)["full"]
    t.request_full()
    assert t.offer(sample(), 20) is None            # requested: not sooner than 30 s after the last
    assert t.offer(sample(), 40)["full"]
    one = sample()
    one["allocations"] = one["allocations"][:1]
    assert t.offer(one, 50)["full"]
