"""A repeated message id never brings back an authorization decision the lists have
outdated, and never one remembered from an earlier connection."""
import json

import pytest
import websockets
from ocpp_testdata import NOW, snapshot
from ocpp_wallbox import basic, recv_reply

from edge.core.book import GroupBook

CREDS = {"1.6": ("CP16", "secret-16", "ocpp1.6"), "2.0.1": ("CP201", "secret-201", "ocpp2.0.1")}


async def _raw(port, version):
    sid, pw, proto = CREDS[version]
    return await websockets.connect("ws://127.0.0.1:%d/%s" % (port, sid), subprotocols=[proto],
                                    additional_headers=basic(sid, pw), proxy=None)


async def _status(ws, frame):
    await ws.send(json.dumps(frame))
    reply = await recv_reply(ws)
    assert reply[0] == 3 and reply[1] == frame[1]
    return (reply[2].get("idTagInfo") or reply[2].get("idTokenInfo"))["status"]


def _authorize(version, uid):
    if version == "1.6":
        return [2, "1", "Authorize", {"idTag": uid}]
    return [2, "1", "Authorize", {"idToken": {"idToken": uid, "type": "ISO14443"}}]


def _book(site, version, **token_status):
    extra = [{"uid": uid, "groups": ["g-staff"], "status": status, "expires_s": None,
              "driver": None, "provider": None} for uid, status in token_status.items()]
    return GroupBook.from_snapshot(snapshot(version=version, extra_tokens=extra), site,
                                   "sync", NOW)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_token_added_since_is_accepted_after_a_reboot_with_the_same_message_id(
        gateway, lists, site, version):
    ws = await _raw(gateway.port, version)
    assert await _status(ws, _authorize(version, "NEWCARD")) in ("Invalid", "Unknown")
    await ws.close()
    lists.replace(_book(site, 2, NEWCARD="valid"))        # a cloud delta adds the card
    ws = await _raw(gateway.port, version)                # rebooted: ids start at 1 again
    assert await _status(ws, _authorize(version, "NEWCARD")) == "Accepted"
    await ws.close()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_token_blocked_since_is_refused_on_the_same_and_on_a_new_connection(
        gateway, lists, site, version):
    lists.replace(_book(site, 2, LATER="valid"))
    ws = await _raw(gateway.port, version)
    assert await _status(ws, _authorize(version, "LATER")) == "Accepted"
    lists.replace(_book(site, 3, LATER="blocked"))
    assert await _status(ws, _authorize(version, "LATER")) == "Blocked"   # same connection
    await ws.close()
    ws = await _raw(gateway.port, version)
    assert await _status(ws, _authorize(version, "LATER")) == "Blocked"
    await ws.close()
