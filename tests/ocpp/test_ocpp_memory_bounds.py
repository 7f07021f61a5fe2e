"""Per-station memory has a bound whatever the traffic (docs/retention.md, "Memory")."""
from ocpp_testdata import SITE
from ocpp.v16 import call
from ocpp_wallbox import connect

from edge.core.topology import Site
from edge.ocpp_gateway.auth import FailureThrottle
from edge.ocpp_gateway.link import ASKED_IDS_MAX, SEEN_IDS_MAX
from edge.ocpp_gateway.station import (MAX_PENDING_REMOTE, SEQ_TX_MAX, SEQ_WINDOW,
                                       SPARE_CONNECTOR_IDS, StationState)


def _station():
    site = Site.from_dict(SITE)
    return StationState("CP16", site.station("CP16"))


def test_repeated_events_are_spotted_within_the_window():
    st = _station()
    assert [st.first_time_seq("tx1", n) for n in (0, 1, 2, 3)] == [True] * 4
    assert [st.first_time_seq("tx1", n) for n in (0, 1, 2, 3)] == [False] * 4
    assert st.first_time_seq("tx1", 10) and not st.first_time_seq("tx1", 10)
    assert st.first_time_seq("tx1", 7)                 # a gap filled late: new
    assert not st.first_time_seq("tx1", 7)
    assert st.first_time_seq("tx1", 5000)              # a jump clears the window
    assert not st.first_time_seq("tx1", 5000) and st.first_time_seq("tx1", 4999)
    assert st.first_time_seq("tx2", 3)                 # each transaction on its own
    assert not st.first_time_seq("tx1", 4999)


def test_a_long_transaction_and_many_transactions_stay_bounded():
    st = _station()
    for n in range(20000):                             # 55 h of 10 s samples
        assert st.first_time_seq("long", n)
    assert all(not st.first_time_seq("long", n) for n in range(20000 - SEQ_WINDOW, 20000))
    for t in range(1000):
        st.first_time_seq("tx%d" % t, 0)
        st.first_time_seq("tx%d" % t, 1)
    assert len(st.tx_seq_seen) == SEQ_TX_MAX
    assert all(len(v) == 2 and v[1] < 1 << SEQ_WINDOW for v in st.tx_seq_seen.values())


async def test_junk_connector_ids_do_not_grow_the_station(gateway):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    try:
        for cid in range(1, 60):
            await c.cp.call(call.StatusNotification(connector_id=cid, error_code="NoError",
                                                    status="Available"))
    finally:
        await c.close()
    st = gateway.stations["CP16"]
    assert len(st.connector_status) <= len(st.cfg.connectors) + 1 + SPARE_CONNECTOR_IDS
    assert st.connector_status[1] == "Available" and st.connector_status[2] == "Available"


async def test_reconnecting_many_times_keeps_one_state_per_station(gateway):
    for _ in range(20):
        c = await connect(gateway.port, "CP16", "1.6", "secret-16")
        await c.close()
    assert set(gateway.stations) == {"CP16", "CP201", "OPEN1"}
    st = gateway.stations["CP16"]
    assert st.link_seq == 20 and len(st.connector_status) <= 3 + SPARE_CONNECTOR_IDS


async def test_a_long_connection_remembers_a_bounded_number_of_message_ids(gateway):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    try:
        for _ in range(10 * SEEN_IDS_MAX):
            await c.cp.call(call.Heartbeat())
        link = gateway.stations["CP16"].link
        assert len(link._seen) == SEEN_IDS_MAX
        assert len(link._asked) <= ASKED_IDS_MAX
        for _ in range(10 * ASKED_IDS_MAX):
            link.new_call_id()             # our calls that were never answered
        assert len(link._asked) == ASKED_IDS_MAX
    finally:
        await c.close()


def test_handshake_failures_from_a_spray_of_addresses_stay_bounded():
    t = [0.0]
    th = FailureThrottle(clock=lambda: t[0], max_peers=100)
    for i in range(5000):
        t[0] += 1.0
        th.record_failure("10.0.%d.%d" % (i // 250, i % 250))
    assert len(th._fails) == 100
    assert th.failures("10.0.19.249") == 1 and th.failures("10.0.0.0") == 0   # newest kept


async def test_remote_starts_waiting_for_a_car_stay_bounded(gateway):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    try:
        tags = []
        for i in range(5 * MAX_PENDING_REMOTE):
            out = await gateway.remote_start("CP16", 2, "pay-%d" % i)
            assert out["accepted"], out
            tags.append(out["id_tag"])
        pending = gateway.stations["CP16"].pending_remote
        assert len(pending) == MAX_PENDING_REMOTE and tags[-1] in pending and tags[0] not in pending
    finally:
        await c.close()
