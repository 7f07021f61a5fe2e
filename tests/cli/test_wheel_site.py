"""The installer's path, as a user takes it: build the wheel, install it into a fresh
virtualenv (no source tree), then `edge init` -> `edge validate` -> `edge install --root`
-> `edge run` against a real Mosquitto (with the account and ACL `edge install` wrote),
`edge simulate` for the meter, the wallbox and the cloud peer; a car charges, and
`edge sessions export` returns its session with the energy and cost of the store.

The wheel and the virtualenv come from the `installed` fixture (tests/cli/conftest.py),
which runs the README's own install lines."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host_tools.broker import Broker, free_port
from tests.cloud.samples import snapshot

from .conftest import clean_env

TOKEN = "04A1B2C3D4"


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd}: {r.stdout[-2000:]} {r.stderr[-3000:]}"
    return r


def edge(bindir, *args, cwd, timeout=60):
    return subprocess.run([str(bindir / "edge"), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=clean_env(), timeout=timeout)


def test_the_package_holds_what_the_commands_need(installed, tmp_path):
    r = edge(installed, "boards", cwd=tmp_path)
    assert r.returncode == 0 and "esp32-devkitc" in r.stdout and "raspberry-pi-4b" in r.stdout
    r = edge(installed, "flash", "--board", "rp2-pico-w", "--port", "/dev/ttyACM0", "--dry-run", cwd=tmp_path)
    assert r.returncode == 0 and "lib/edge/core/allocation.py" in r.stdout, r.stdout + r.stderr
    py = installed / "python"
    r = _run([str(py), "-c", "import edge, edge.core.allocation as a; print(edge.__file__); print(a.__file__)"],
             cwd=tmp_path, env=clean_env())
    assert "site-packages" in r.stdout and r.stdout.split()[-1].endswith("/edge/core/allocation.py"), r.stdout
    # One pure-Python package for every gateway: nothing compiled, nothing for a compiler.
    package = Path(r.stdout.split()[0]).parent
    built = [p.name for p in package.rglob("*") if p.suffix in (".so", ".pyd", ".c", ".pxd")]
    assert built == [], built
    for rel in ("deploy/systemd/edge.service", "deploy/mosquitto/acl", "meters/models/eastron_sdm630.json"):
        assert (Path(r.stdout.split()[0]).parent / rel).is_file(), rel


def test_from_init_to_an_exported_session(installed, tmp_path):
    root, site = tmp_path / "root", tmp_path / "site.json"
    (root / "var/lib").mkdir(parents=True)          # as on any Debian
    ports = {"ocpp": free_port(), "meter": free_port(), "mqtt": free_port()}
    r = edge(installed, "init", "--site-id", "lab", "--grid-a", "32", "--station", "garage:CP001=3x16",
             "--meter", f"eastron_sdm630@tcp://127.0.0.1:{ports['meter']}/1", "--ocpp-port", ports["ocpp"],
             "--cloud-host", "127.0.0.1", "--cloud-plain", "--cloud-port", ports["mqtt"],
             "--store", root / "var/lib/edge/edge.db", "--out", site, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = edge(installed, "validate", site, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("OK"), r.stdout + r.stderr
    r = edge(installed, "install", site, "--root", root, "--broker", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    installed_site = root / "etc/edge/site.json"
    passwd = root / "etc/mosquitto/evc.passwd"
    # The cloud's own account, added as edge/deploy/mosquitto/README.md says.
    _run(["mosquitto_passwd", "-b", str(passwd), "cloud.peer", "cloud-secret"])
    snap = tmp_path / "snapshot.json"
    snap.write_text(json.dumps(snapshot(1, uids=(TOKEN,))))
    procs = []
    with Broker(workdir=str(tmp_path / "broker"), port=ports["mqtt"], password_file=str(passwd),
                acl_file=str(root / "etc/mosquitto/evc.acl")):
        try:
            sim_log = open(tmp_path / "simulate.log", "w")
            procs.append(subprocess.Popen(
                [str(installed / "edge"), "simulate", str(installed_site), "--tokens", TOKEN, "--mean-gap-s", "1",
                 "--stay-s", "15", "--snapshot", str(snap), "--cloud-password", "cloud-secret",
                 "--show-every-s", "5"], stdout=sim_log, stderr=subprocess.STDOUT, cwd=tmp_path, env=clean_env()))
            wait_for(lambda: "wallbox(es) connecting" in (tmp_path / "simulate.log").read_text(), 30,
                     lambda: (tmp_path / "simulate.log").read_text())
            r = edge(installed, "validate", "--probe", installed_site, cwd=tmp_path)
            assert r.returncode == 0, r.stdout + r.stderr
            assert "probe meter grid:" in r.stdout and "logged in as lab" in r.stdout
            edge_log = open(tmp_path / "edge.log", "w")
            run = subprocess.Popen([str(installed / "edge"), "run", str(installed_site)], stdout=edge_log,
                                   stderr=subprocess.STDOUT, cwd=tmp_path, env=clean_env())
            procs.append(run)

            def completed():
                r = edge(installed, "sessions", "export", installed_site, "--format", "json", cwd=tmp_path)
                done = [s for s in json.loads(r.stdout or "[]") if s["state"] == "completed"] \
                    if r.returncode == 0 else []
                return done
            wait_for(completed, 120, lambda: (tmp_path / "edge.log").read_text()[-3000:]
                     + (tmp_path / "simulate.log").read_text()[-3000:])
            run.send_signal(signal.SIGTERM)
            assert run.wait(timeout=30) == 0
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
    log = (tmp_path / "edge.log").read_text()
    assert "Traceback" not in log and "stale" not in log, log
    assert "edge.alive: alive: 0/1 stations connected" in log and "station CP001 connected" in log, log
    assert "cloud link up" in log and "snapshot c-" in log, log
    session = completed()[0]
    assert session["token"] == TOKEN and session["group_id"] == "g-staff"
    assert session["energy_wh"] > 0 and session["cost"]["total_m"] > 0, session
    # The same figures as the store itself holds.
    db = sqlite3.connect(f"file:{root / 'var/lib/edge/edge.db'}?mode=ro", uri=True)
    energy, cost = db.execute("SELECT energy_wh, cost FROM sessions WHERE session_id=?",
                              (session["session_id"],)).fetchone()
    db.close()
    assert session["energy_wh"] == energy and session["cost"] == json.loads(cost)
    r = edge(installed, "sessions", "export", installed_site, "--station", "CP001", cwd=tmp_path)
    row = [x for x in csv.DictReader(io.StringIO(r.stdout)) if x["session_id"] == session["session_id"]][0]
    assert int(row["energy_wh"]) == energy and int(row["total_m"]) == json.loads(cost)["total_m"]
    assert row["currency"] == "EUR"


def wait_for(predicate, timeout_s, explain):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail("timed out; " + explain())
