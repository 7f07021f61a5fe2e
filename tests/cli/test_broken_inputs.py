"""Realistic mistakes an installer makes: each is one `error:` line naming what is wrong
and what to do, with the documented exit code (2 bad input, 1 runtime failure), never a
traceback. Every case runs the real command in a child process."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from host_tools.broker import Broker
from tests.cloud.tls_certs import make_ca, make_cert

from .site_files import REPO, example, write


def edge(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def one_error(r, code, *needles):
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert r.returncode == code, r.stderr
    return errors[0]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    ca = make_ca(d, "ca")
    return {"ca": ca, "server": make_cert(d, ca, "server", "127.0.0.1", server=True),
            "other": make_cert(d, ca, "other", "other")}


def test_store_directory_missing(tmp_path):
    d = example(tmp_path)
    d["store"]["path"] = str(tmp_path / "no" / "such" / "edge.db")      # two levels missing
    one_error(edge("run", write(tmp_path, d)), 2, "store.path", "does not exist", "edge install")


def test_store_directory_one_level_missing_is_created_by_validate_rules(tmp_path):
    d = example(tmp_path)               # tmp/state does not exist yet: creatable, so no error
    r = edge("validate", write(tmp_path, d))
    assert r.returncode == 0, r.stderr


def test_ocpp_certificate_missing(tmp_path, certs):
    d = example(tmp_path)
    d["ocpp"].update(tls_cert=str(tmp_path / "ocpp.crt"), tls_key=str(certs["server"][1]))
    one_error(edge("run", write(tmp_path, d)), 2, "ocpp.tls_cert", "not found", str(tmp_path / "ocpp.crt"))


def test_ocpp_key_does_not_match_certificate(tmp_path, certs):
    d = example(tmp_path)
    d["ocpp"].update(tls_cert=str(certs["server"][0]), tls_key=str(certs["other"][1]))
    one_error(edge("run", write(tmp_path, d)), 2, "ocpp.tls_key", "does not match")


def test_ocpp_port_taken(tmp_path):
    d = example(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        d["ocpp"]["port"] = s.getsockname()[1]
        one_error(edge("run", write(tmp_path, d)), 2, "ocpp.port", "is taken")


def test_unknown_board():
    one_error(edge("flash", "--board", "esp8266", "--port", "/dev/ttyUSB0", "--dry-run"), 2,
              "esp8266", "known boards: esp32-devkitc")


def test_wrong_meter_model_name(tmp_path):
    d = example(tmp_path)
    d["meters"][0]["model"] = "eastron_sdm603"
    one_error(edge("validate", write(tmp_path, d)), 2, "meters[0].model", "eastron_sdm603")


def test_unreadable_config(tmp_path):
    (tmp_path / "site.toml").mkdir()            # root reads any file; a directory it cannot
    one_error(edge("run", tmp_path / "site.toml"), 2, "site.toml", "cannot be read")


def test_config_not_toml(tmp_path):
    (tmp_path / "site.toml").write_text("[site]\nsite_id = demo\n")
    one_error(edge("validate", tmp_path / "site.toml"), 2, "not valid TOML")


def test_missing_rs485_adapter(tmp_path):
    d = example(tmp_path)
    d["meters"][0] = {"id": "grid", "model": "eastron_sdm630", "transport": "rtu",
                      "serial_port": "/dev/ttyUSB9", "device_id": 1}
    one_error(edge("validate", write(tmp_path, d)), 2, "meters[0].serial_port", "/dev/ttyUSB9")


def test_cloud_ca_file_missing(tmp_path):
    d = example(tmp_path)
    d["cloud"] = {"host": "127.0.0.1", "port": 8883, "username": "demo", "password": "x" * 20,
                  "tls": {"ca_file": str(tmp_path / "ca.crt")}}
    one_error(edge("validate", write(tmp_path, d)), 2, "cloud.tls.ca_file", "not found")


def test_broker_refuses_the_credentials(tmp_path):
    d = example(tmp_path)
    with Broker(workdir=str(tmp_path / "broker"), users={"demo": "the-right-password"}) as broker:
        d["cloud"] = {"host": "127.0.0.1", "port": broker.port, "username": "demo",
                      "password": "a-wrong-password"}
        del d["meters"]                         # only the broker is probed
        d.pop("control", None)
        r = edge("validate", "--probe", write(tmp_path, d))
    one_error(r, 1, "probe failed")
    assert "FAILED: broker refused the login: Not authorized" in r.stdout, r.stdout


def test_existing_site_file_is_not_overwritten(tmp_path):
    out = tmp_path / "site.json"
    out.write_text("keep")
    one_error(edge("init", "--site-id", "s", "--grid-a", "32", "--station", "CP1=3x16", "--out", out), 2,
              "exists", "--force")
    assert out.read_text() == "keep"


def test_every_section_error_at_once(tmp_path):
    d = example(tmp_path)
    d["site"]["grid"]["max_current_a"] = -5
    d["meters"][0]["model"] = "nope"
    d["ocpp"]["port"] = 70000
    d["control"] = {"interval_s": 0}
    r = edge("validate", write(tmp_path, d))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    fields = ["site.grid.max_current_a", "meters[0].model", "ocpp.port", "control.interval_s"]
    assert len(errors) == len(fields), r.stderr
    for field in fields:
        assert any(field in e for e in errors), (field, r.stderr)


def test_run_with_missing_cloud_tls_files_keeps_the_site_charging(tmp_path):
    """Not fatal for `edge run`: one ERROR line at start, the link retries, the OCPP
    server serves; `edge validate` calls the same thing an error (see above)."""
    import signal
    import time
    d = example(tmp_path)
    d["cloud"] = {"host": "127.0.0.1", "port": 8883, "username": "demo", "password": "x" * 20,
                  "tls": {"ca_file": str(tmp_path / "ca.crt")}}
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", str(write(tmp_path, d))], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", d["ocpp"]["port"]), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the OCPP server never listened")
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        err = proc.stderr.read()
        assert "Traceback" not in err
        assert err.count("cloud.tls.ca_file") >= 1 and "runs without the cloud" in err
        warnings = [line for line in err.splitlines() if "WARNING" in line and "TLS files of cloud.tls" in line]
        assert len(warnings) == 1, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
