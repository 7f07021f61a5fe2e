"""The lists say "check online": a listed token of a group with ``check_online`` is
asked of the cloud while the link is up, the cloud's refusal wins over the lists, and
offline (or with no answer in time) the lists decide.

Real Mosquitto, the reference cloud peer as the cloud and roaming hub, the whole edge
service and real OCPP wallboxes (1.6 and 2.0.1) over websockets. The edge's clock is
shifted by the test to pass the brief memory of an answer without waiting for it.
"""
import pytest

from edge.core.tokens import T_STATUS
from host_tools.cloud_peer import CloudPeer

from test_online_auth import PUBLIC, SITE, V16, V201, _close, _site, roaming_snapshot

LISTED = "ROAMLIST1"        # in the lists, group g-roam (check_online), provider DE*ABC


def snapshot() -> dict:
    snap = roaming_snapshot()
    roam = next(g for g in snap["groups"] if g["id"] == "g-roam")
    roam["check_online"] = True
    snap["tokens"].append({"uid": LISTED, "groups": ["g-roam"], "status": "valid", "expires_s": None,
                           "driver": None, "provider": "DE*ABC"})
    return snap


@pytest.fixture
def cloud(broker):
    p = CloudPeer(port=broker.port, client_id="cloud-check-online")
    p.serve_snapshot[SITE] = snapshot()
    p.roaming[LISTED] = {"provider": "DE*ABC", "valid_s": 600}
    p.start()
    yield p
    p.stop()


def asked(cloud, token):
    return sum(1 for r in cloud.auth_requests if r["token"].upper() == token)


async def test_a_listed_token_is_checked_online_and_the_clouds_refusal_wins(broker, cloud, tmp_path, until):
    site = await _site(broker, tmp_path, until)
    svc = site.svc
    try:
        assert svc.lists.book.group("g-roam").check_online
        # Online: asked, accepted.
        assert await site.tap(V201, LISTED) == "Accepted"
        assert asked(cloud, LISTED) == 1
        # The wallbox may keep the acceptance in its own cache only briefly.
        d = await svc.authorizer.authorize(LISTED, V201, 1)
        assert d.accepted and d.expires_s <= int(site.clock()) + 30
        assert (await svc.authorizer.authorize("CARD01", V201, 1)).expires_s is None
        # Past the answer's brief memory, a 1.6 wallbox's Authorize asks again and its
        # StartTransaction right after does not.
        site.clock.shift_s += 31
        assert await site.fleet.plug_in(V16, 1, LISTED, 5000, 16)
        assert await until(lambda: len(svc.sessions.open_sessions()) == 1)
        [rec] = svc.sessions.open_sessions()
        assert rec["group_id"] == "g-roam" and not rec["refused"]
        assert asked(cloud, LISTED) == 2
        site.fleet.unplug(V16, 1)
        assert await until(lambda: not svc.sessions.open_sessions())
        # A listed token of a group without the flag is decided by the lists alone.
        assert await site.tap(V16, "CARD01") == "Accepted"
        assert asked(cloud, "CARD01") == 0

        # The provider ends the contract; the edge's lists still say valid. Once the
        # last answer's brief memory is over, the cloud is asked and its refusal wins.
        cloud.roaming[LISTED]["status"] = "blocked"
        site.clock.shift_s += 31
        assert await site.tap(V16, LISTED) == "Blocked"
        assert await site.tap(V201, LISTED) == "Blocked"
        assert asked(cloud, LISTED) == 3            # the second tap used the fresh refusal
        assert svc.lists.book.token_tuple(LISTED)[T_STATUS] == "valid"
        assert not await site.fleet.plug_in(PUBLIC, 1, LISTED, 5000, 16)

        # The link goes down: the fresh refusal still holds; after it, the lists decide.
        broker.stop()
        assert await until(lambda: not svc.cloud.online)
        assert await site.tap(V201, LISTED) == "Blocked"
        site.clock.shift_s += 31
        assert await site.tap(V201, LISTED) == "Accepted"
        assert await site.tap(V16, LISTED) == "Accepted"
        assert svc.authorizer.checked_listed == 3
    finally:
        await _close(site)


async def test_no_answer_in_time_leaves_the_decision_to_the_lists(broker, cloud, tmp_path, until):
    site = await _site(broker, tmp_path, until, auth_deadline_s=0.5)
    cloud.auth_delay_s = 1.5
    cloud.roaming[LISTED]["status"] = "blocked"     # the cloud would refuse, but too late
    try:
        assert await site.tap(V201, LISTED) == "Accepted"
        assert asked(cloud, LISTED) == 1
        assert site.svc.authorizer.fallbacks == 1
        # The late refusal is kept: the next tap is refused without asking again.
        assert await until(lambda: site.svc.authorizer.known_answer(LISTED, int(site.clock())) is not None)
        assert await site.tap(V16, LISTED) == "Blocked"
        assert asked(cloud, LISTED) == 1
    finally:
        await _close(site)
