"""Who may connect: configured stations only, Basic auth, TLS, versions per station."""
import logging
import ssl
import subprocess

import pytest
import websockets
from ocpp_testdata import STATIONS_CFG
from ocpp_wallbox import basic, connect

from edge.core.errors import ValidationError
from edge.ocpp_gateway import Gateway
from edge.ocpp_gateway.auth import FailureThrottle, check_basic, station_from_path


async def _status_of(port, path, proto="ocpp1.6", headers=None):
    with pytest.raises(websockets.InvalidStatus) as e:
        await websockets.connect("ws://127.0.0.1:%d%s" % (port, path), subprotocols=[proto],
                                 additional_headers=headers or {}, proxy=None)
    return e.value.response.status_code


async def test_unknown_station_refused_and_logged_with_peer(gateway, caplog):
    with caplog.at_level(logging.WARNING, logger="edge.ocpp_gateway.server"):
        code = await _status_of(gateway.port, "/CP999", headers=basic("CP999", "x"))
    assert code == 404
    assert any("127.0.0.1" in r.getMessage() and "CP999" in r.getMessage()
               for r in caplog.records)


async def test_wrong_password_refused(gateway):
    gateway.throttle = FailureThrottle(base_s=0.001, max_s=0.002)
    assert await _status_of(gateway.port, "/CP16", headers=basic("CP16", "wrong")) == 401
    # right password but for another identity
    assert await _status_of(gateway.port, "/CP16", headers=basic("CP201", "secret-16")) == 401
    # no credentials at all
    assert await _status_of(gateway.port, "/CP16") == 401
    assert gateway.station_status()["CP16"]["connected"] is False


async def test_version_not_allowed_for_station(gateway):
    # CP16 is configured for 1.6 only
    assert await _status_of(gateway.port, "/CP16", "ocpp2.0.1", basic("CP16", "secret-16")) == 400


async def test_station_without_password_and_either_version(gateway):
    c = await connect(gateway.port, "OPEN1", "2.0.1")
    assert gateway.station_status()["OPEN1"]["version"] == "2.0.1"
    await c.close()
    c = await connect(gateway.port, "OPEN1", "1.6")
    assert gateway.station_status()["OPEN1"]["version"] == "1.6"
    await c.close()


async def test_repeated_failures_are_slowed_down(gateway):
    gateway.throttle = FailureThrottle(base_s=0.001, max_s=0.004)
    for _ in range(4):
        await _status_of(gateway.port, "/CP16", headers=basic("CP16", "guess"))
    assert gateway.throttle.failures("127.0.0.1") == 4
    # a success forgets the peer's failures
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    assert gateway.throttle.failures("127.0.0.1") == 0
    await c.close()


def test_throttle_delays_grow_and_are_capped():
    t = [0.0]
    th = FailureThrottle(base_s=0.5, max_s=4, forget_s=60, clock=lambda: t[0])
    assert [th.record_failure("p") for _ in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]
    t[0] = 100.0                          # quiet for longer than forget_s
    assert th.failures("p") == 0
    assert th.record_failure("p") == 0.0


def test_basic_header_parsing():
    ok = basic("CP1", "pw")["Authorization"]
    assert check_basic(ok, "CP1", "pw") == "ok"
    assert check_basic(ok, "CP1", "other") == "bad_password"
    assert check_basic("Basic !!!notbase64", "CP1", "pw") == "bad_password"
    assert check_basic("Bearer abc", "CP1", "pw") == "no_credentials"
    assert check_basic(None, "CP1", None) == "ok"
    assert station_from_path("/ocpp/CP%201") == "CP 1"
    assert station_from_path("/") is None


def test_stations_cfg_is_validated(site, lists, sessions):
    with pytest.raises(ValidationError) as e:
        Gateway(site, {"NOPE": {"password": None}}, lists, sessions)
    assert str(e.value).startswith("stations.NOPE:")
    with pytest.raises(ValidationError) as e:
        Gateway(site, {"CP16": {"password": None, "ocpp_versions": ["1.5"]}}, lists, sessions)
    assert "stations.CP16.ocpp_versions[0]" in str(e.value)
    with pytest.raises(ValidationError) as e:
        Gateway(site, {"CP16": {"password": "x" * 41}}, lists, sessions)
    assert "stations.CP16.password" in str(e.value) and "x" * 41 not in str(e.value)


@pytest.fixture
def tls_files(tmp_path):
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(crt), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, crt


async def test_tls_security_profile_2(site, lists, sessions, tls_files):
    key, crt = tls_files
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(crt, key)
    gw = Gateway(site, STATIONS_CFG, lists, sessions)
    port = await gw.start("127.0.0.1", 0, ssl=server_ctx)
    try:
        client_ctx = ssl.create_default_context(cafile=str(crt))
        ws = await websockets.connect("wss://127.0.0.1:%d/CP16" % port, subprotocols=["ocpp1.6"],
                                      additional_headers=basic("CP16", "secret-16"),
                                      ssl=client_ctx, proxy=None)
        await ws.send('[2,"h1","Heartbeat",{}]')
        assert (await ws.recv()).startswith('[3,"h1"')
        await ws.close()
        # plain ws:// to a TLS port does not get in
        with pytest.raises(Exception):
            await websockets.connect("ws://127.0.0.1:%d/CP16" % port, subprotocols=["ocpp1.6"],
                                     additional_headers=basic("CP16", "secret-16"), proxy=None,
                                     open_timeout=5)
    finally:
        await gw.stop()


async def test_refused_handshakes_2_0_1(gateway):
    gateway.throttle = FailureThrottle(base_s=0.001, max_s=0.002)
    assert await _status_of(gateway.port, "/CP201", "ocpp2.0.1",
                            basic("CP201", "nope")) == 401
    assert await _status_of(gateway.port, "/CPX", "ocpp2.0.1", basic("CPX", "x")) == 404
    # CP201 is configured for 2.0.1 only
    assert await _status_of(gateway.port, "/CP201", "ocpp1.6",
                            basic("CP201", "secret-201")) == 400


def test_site_stations_without_ocpp_config_are_named(site, lists, sessions, caplog):
    with caplog.at_level(logging.WARNING, logger="edge.ocpp_gateway.server"):
        Gateway(site, {"CP16": {"password": None}}, lists, sessions)
    assert any("cannot connect: CP201, OPEN1" in r.getMessage() for r in caplog.records)
