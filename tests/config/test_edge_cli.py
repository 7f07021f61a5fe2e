"""`python -m edge CONFIG`: a wrong file stops at once with the field named; a good one runs
until SIGTERM and then shuts down cleanly (exit 0)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_edge(path, timeout=20):
    return subprocess.run([sys.executable, "-m", "edge", str(path)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_wrong_config_exits_2_naming_the_field(tmp_path):
    d = tomllib.loads((REPO / "examples" / "site.toml").read_text())
    d["ocpp"]["port"] = -1
    p = tmp_path / "s.json"
    p.write_text(json.dumps(d))
    r = run_edge(p)
    assert r.returncode == 2
    assert "ocpp.port" in r.stderr


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_edge_runs_and_stops_cleanly_on_sigterm(tmp_path):
    d = tomllib.loads((REPO / "examples" / "site.toml").read_text())
    port = _free_port()
    d["ocpp"].update(host="127.0.0.1", port=port)
    d["meters"][0].update(host="127.0.0.1", port=_free_port())   # nobody there: fail-safe
    del d["cloud"]
    d["store"]["path"] = str(tmp_path / "edge.db")
    p = tmp_path / "s.json"
    p.write_text(json.dumps(d))
    proc = subprocess.Popen([sys.executable, "-m", "edge", str(p), "--log-level", "INFO"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        listening = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                listening = True
                break
            except OSError:
                time.sleep(0.1)
        assert listening, proc.stderr.read() if proc.poll() is not None else "edge never listened"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        err = proc.stderr.read()
        assert "failsafe" in err            # no meter answers: the allocation says so
        assert (tmp_path / "edge.db").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
