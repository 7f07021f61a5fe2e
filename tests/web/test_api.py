"""The local API's contract, against a running service over real sockets."""
from __future__ import annotations

import csv
import io
import ssl

import aiohttp
import pytest

from edge.web.passwords import hash_password, verify_password
from tests.web.conftest import ADMIN, VIEWER, basic, wait_until

ENDPOINTS = ["/api/v1/status", "/api/v1/connectors", "/api/v1/sessions", "/api/v1/sessions.csv",
             "/api/v1/groups", "/api/v1/groups/history", "/api/v1/events", "/metrics", "/"]


async def _get(http, site, path, headers=ADMIN, status=200):
    async with http.get(site.url + path, headers=headers) as r:
        body = await r.read()
        assert r.status == status, (path, r.status, body[:200])
        return r, body


async def test_every_endpoint_needs_a_login_and_refuses_a_wrong_one(site):
    async with aiohttp.ClientSession() as http:
        for path in ENDPOINTS:
            r, _ = await _get(http, site, path, headers={}, status=401)
            assert r.headers["WWW-Authenticate"].startswith("Basic ")
            await _get(http, site, path, headers=basic("admin", "wrong-password"), status=401)
            await _get(http, site, path, headers=basic("root", "admin-secret-pw"), status=401)
            await _get(http, site, path, headers={"Authorization": "Basic !!notbase64"}, status=401)
            await _get(http, site, path, headers=VIEWER)
        await _get(http, site, "/api/v1/nothing", headers=VIEWER, status=404)


async def test_a_viewer_may_read_but_not_write(site):
    assert await site.fleet.plug_in("CP001", 1, "FLEET01", 30000, 16)
    assert await wait_until(lambda: site.svc.sessions.open_sessions())
    sid = site.svc.sessions.open_sessions()[0]["session_id"]
    async with aiohttp.ClientSession() as http:
        async with http.post(site.url + "/api/v1/sessions/%s/stop" % sid, headers=VIEWER) as r:
            assert r.status == 403
        async with http.post(site.url + "/api/v1/sessions/%s/stop" % sid, headers={}) as r:
            assert r.status == 401
        assert site.svc.sessions.get(sid)["state"] == "started"
        async with http.post(site.url + "/api/v1/sessions/nosuch/stop", headers=ADMIN) as r:
            assert r.status == 404
        async with http.post(site.url + "/api/v1/sessions/%s/stop" % sid, headers=ADMIN) as r:
            assert r.status == 200 and (await r.json())["accepted"] is True
        assert await wait_until(lambda: site.svc.sessions.get(sid)["state"] == "completed")
        _, body = await _get(http, site, "/api/v1/events?limit=100")
        kinds = [e["kind"] for e in __import__("json").loads(body)["events"]]
        assert "remote_stop" in kinds and "session_stopped" in kinds


async def test_status_and_connectors_say_what_the_edge_sees(site):
    svc = site.svc
    assert await site.fleet.plug_in("CP001", 1, "FLEET01", 30000, 16)
    assert await site.fleet.plug_in("CP003", 1, "STAFF01", 30000, 16)
    assert await wait_until(lambda: len(svc.sessions.open_sessions()) == 2 and svc.last is not None
                            and all(svc.last.limits.get(k, (0,))[0] > 0 for k in (("CP001", 1), ("CP003", 1))))
    async with aiohttp.ClientSession() as http:
        _, _ = await _get(http, site, "/api/v1/status", headers=VIEWER)
        async with http.get(site.url + "/api/v1/status", headers=VIEWER) as r:
            st = await r.json()
        assert st["site_id"] == "demo" and st["allocation"]["mode"] == "normal"
        assert [p["phase"] for p in st["phases"]] == ["L1", "L2", "L3"]
        for p in st["phases"]:
            assert p["limit_da"] == 400 and p["margin_da"] == 10
            assert p["grid_da"] is not None and p["building_da"] is not None
            assert p["headroom_da"] == p["limit_da"] - p["margin_da"] - p["grid_da"]
        assert st["meter"]["id"] == "grid" and st["meter"]["age_s"] < 5
        assert st["cloud"] == {"configured": False, "online": False}
        assert st["outbox"]["pending"] >= 2 and st["stations"] == {"total": 6, "connected": 3}
        async with http.get(site.url + "/api/v1/connectors", headers=VIEWER) as r:
            conns = {(c["station"], c["connector"]): c for c in (await r.json())["connectors"]}
    assert len(conns) == 6
    fleet = conns[("CP001", 1)]
    assert fleet["token"] == "FL***01" and fleet["group_id"] == "g-fleet" and fleet["prioritised"] is True
    assert fleet["group_name"] == "Fleet cars" and fleet["session_id"]
    assert fleet["allocated_da"] > 0 and fleet["phases"] == 3 and fleet["wiring"] == "L1L2L3"
    assert fleet["reason"]["code"] in ("at_max", "at_demand", "limited") and fleet["reason"]["text"]
    staff = conns[("CP003", 1)]
    assert staff["token"] == "ST***01" and staff["prioritised"] is False
    idle = conns[("CP004", 1)]
    assert idle["session_id"] is None and idle["token"] is None and idle["reason"]["code"] == "idle"
    assert idle["connected"] is False
    # No raw token anywhere in the answer.
    assert "FLEET01" not in str(conns) and "STAFF01" not in str(conns)


async def test_sessions_are_paged_and_exported_as_csv(site):
    for n in range(3):
        assert await site.fleet.plug_in("CP00%d" % (n + 1), 1, ("FLEET01", "FLEET02", "STAFF01")[n], 30000, 16)
    assert await wait_until(lambda: len(site.svc.sessions.open_sessions()) == 3)
    site.fleet.unplug("CP001", 1)
    assert await wait_until(lambda: len(site.svc.sessions.open_sessions()) == 2)
    async with aiohttp.ClientSession() as http:
        async with http.get(site.url + "/api/v1/sessions?limit=2", headers=VIEWER) as r:
            first = await r.json()
        async with http.get(site.url + "/api/v1/sessions?limit=2&offset=2", headers=VIEWER) as r:
            second = await r.json()
        async with http.get(site.url + "/api/v1/sessions?state=completed", headers=VIEWER) as r:
            done = await r.json()
        for bad in ("limit=0", "limit=501", "limit=x", "offset=-1", "state=nope"):
            async with http.get(site.url + "/api/v1/sessions?" + bad, headers=VIEWER) as r:
                assert r.status == 400, bad
                assert (bad.split("=")[0]) in await r.text()
        r, body = await _get(http, site, "/api/v1/sessions.csv", headers=VIEWER)
        assert r.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in r.headers["Content-Disposition"]
    assert first["total"] == 3 and len(first["sessions"]) == 2 and len(second["sessions"]) == 1
    ids = [s["session_id"] for s in first["sessions"] + second["sessions"]]
    assert len(set(ids)) == 3
    starts = [s["started_s"] for s in first["sessions"] + second["sessions"]]
    assert starts == sorted(starts, reverse=True)
    assert done["total"] == 1 and done["sessions"][0]["station"] == "CP001"
    assert done["sessions"][0]["token"] == "FL***01"
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == 3 and {r["session_id"] for r in rows} == set(ids)
    assert {r["token"] for r in rows} == {"FL***01", "FL***02", "ST***01"}
    completed = [r for r in rows if r["state"] == "completed"][0]
    assert completed["stopped_utc"].endswith("Z") and completed["station"] == "CP001"


async def test_groups_history_and_events(site):
    async with aiohttp.ClientSession() as http:
        async with http.get(site.url + "/api/v1/groups", headers=VIEWER) as r:
            g = await r.json()
        async with http.get(site.url + "/api/v1/groups/history?group=g-staff", headers=VIEWER) as r:
            h = await r.json()
        async with http.get(site.url + "/api/v1/events", headers=VIEWER) as r:
            ev = await r.json()
    assert g["version"] == 1
    by_id = {x["id"]: x for x in g["groups"]}
    assert by_id["g-fleet"]["prioritised"] is True and by_id["g-staff"]["name"] == "Staff (all)"
    assert by_id["g-fleet"]["sessions"] == 0
    newest = h["history"][0]
    assert (newest["change"], newest["before"], newest["after"], newest["by"]) == ("name", "Staff", "Staff (all)", "admin")
    assert all(e["group_id"] == "g-staff" for e in h["history"]) and h["total"] == len(h["history"])
    kinds = [e["kind"] for e in ev["events"]]
    assert kinds.count("station_connected") == 3
    seqs = [e["seq"] for e in ev["events"]]
    assert seqs == sorted(seqs, reverse=True) and ev["seq"] == seqs[0]
    async with aiohttp.ClientSession() as http:
        async with http.get(site.url + "/api/v1/events?after=%d" % ev["seq"], headers=VIEWER) as r:
            assert (await r.json())["events"] == []


def test_passwords_are_stored_as_scrypt_hashes():
    h = hash_password("correct horse", log2_n=10)
    assert h.startswith("scrypt$10$") and "correct horse" not in h
    assert verify_password("correct horse", h) and not verify_password("correct hors", h)
    assert hash_password("x", log2_n=10) != hash_password("x", log2_n=10)     # salted


def test_the_api_is_off_by_default_and_its_settings_are_checked():
    from edge import config
    from edge.core.errors import ValidationError
    from host_tools import demo_site
    d = demo_site.site_config(1, 1, "x.db")
    assert config.from_dict(d).http is None
    good = hash_password("long enough", log2_n=10)
    d["http"] = {"port": 8080, "admin_password_hash": good}
    assert config.from_dict(d).http.host == "127.0.0.1"
    for bad, field in (({"port": 8080}, "http.admin_password_hash"),
                       ({"admin_password_hash": "plain password"}, "http.admin_password_hash"),
                       ({"admin_password_hash": good, "port": 70000}, "http.port"),
                       ({"admin_password_hash": good, "tls_cert": "/x.crt"}, "http.tls_key"),
                       ({"admin_password_hash": good, "colour": "red"}, "http.colour")):
        d["http"] = bad
        with pytest.raises(ValidationError) as err:
            config.from_dict(d)
        assert err.value.field == field
        assert "plain password" not in str(err.value)
    d["http"] = {"enabled": False, "admin_password_hash": good}
    assert config.from_dict(d).http is None


async def test_tls_when_configured(tmp_path):
    from tests.cloud.tls_certs import make_ca, make_cert    # the cloud tests' throw-away CA
    from tests.web.conftest import start_site, stop_site
    ca = make_ca(tmp_path, "ca")
    crt, key = make_cert(tmp_path, ca, "web", "localhost", server=True)
    site = await start_site(tmp_path, stations=0, tls=(str(crt), str(key)))
    try:
        ctx = ssl.create_default_context(cafile=str(ca[0]))
        async with aiohttp.ClientSession() as http:
            async with http.get("https://localhost:%d/api/v1/status" % site.svc.http_port, headers=VIEWER,
                                ssl=ctx) as r:
                assert r.status == 200 and (await r.json())["site_id"] == "demo"
            with pytest.raises(aiohttp.ClientError):
                async with http.get("http://127.0.0.1:%d/api/v1/status" % site.svc.http_port, headers=VIEWER):
                    pass
    finally:
        await stop_site(site)
