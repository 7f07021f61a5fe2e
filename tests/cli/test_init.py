import json

import pytest

from edge import config
from edge.core.errors import ValidationError
import argparse

from edge.cli import init as provision
from edge.cli import main as edge_main

ARGS = ["--site-id", "acme-hq", "--grid-a", "63",
        "--station", "garage:CP001=3x16,3x16@L2L3L1", "--station", "visitors:CP002=1x32@L2",
        "--meter", "eastron_sdm630@tcp://192.0.2.10:502/1",
        "--meter", "abb_b23@rtu:/dev/ttyUSB0:9600:E/7",
        "--cloud-host", "mqtt.example.net"]


def test_provisioned_file_loads_with_the_service_rules(tmp_path, capsys):
    out = tmp_path / "site.json"
    assert edge_main(["init", *ARGS + ["--out", str(out)]]) == 0
    cfg = config.load(out)
    assert [g.id for g in cfg.site.charging_groups] == ["garage", "visitors"]
    cp1 = cfg.site.station("CP001")
    assert [c.wiring for c in cp1.connectors] == [(0, 1, 2), (1, 2, 0)]
    assert cfg.site.connector("CP002", 1).wiring == (1,)
    assert [m.transport for m in cfg.meters] == ["tcp", "rtu"]
    assert cfg.meters[1].parity == "E" and cfg.meters[1].device_id == 7
    assert cfg.cloud.username == "acme-hq"
    printed = capsys.readouterr().out
    for sid, st in cfg.ocpp.stations.items():
        assert 16 <= len(st["password"]) <= 40
        assert st["password"] in printed
    assert out.stat().st_mode & 0o777 == 0o600


def test_passwords_differ_per_station_and_per_run(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    edge_main(["init", *ARGS + ["--out", str(a)]])
    edge_main(["init", *ARGS + ["--out", str(b)]])
    pa = json.loads(a.read_text())["ocpp"]["stations"]
    pb = json.loads(b.read_text())["ocpp"]["stations"]
    assert pa["CP001"]["password"] != pa["CP002"]["password"]
    assert pa["CP001"]["password"] != pb["CP001"]["password"]


def test_existing_file_is_not_overwritten_without_force(tmp_path, capsys):
    out = tmp_path / "site.json"
    out.write_text("keep")
    assert edge_main(["init", *ARGS + ["--out", str(out)]]) == 2
    assert out.read_text() == "keep"
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize("bad, field", [
    (["--station", "CP9=2x16"], "--station[2].connector[1]"),
    (["--station", "garage:CP001=3x16"], "--station[2]"),
    (["--station", "oops"], "--station[2]"),
    (["--meter", "sdm@ftp://x"], "--meter[2]"),
    (["--meter", "no_such_model@tcp://10.0.0.1:502/1"], "meters[2].model"),
])
def test_bad_arguments_are_refused_and_nothing_written(tmp_path, capsys, bad, field):
    out = tmp_path / "site.json"
    assert edge_main(["init", *ARGS + bad + ["--out", str(out)]]) == 2
    assert field in capsys.readouterr().err
    assert not out.exists()


def test_build_is_deterministic_with_an_injected_token_source():
    ns = argparse.Namespace(site_id="s", timezone="UTC0", grid_a=32, margin_a=1,
                                      station=["CP1=1x16"], meter=[], ocpp_port=9000, cloud_host=None,
                                      cloud_port=8883, store="x.db")
    cfg, creds = provision.build(ns, token=lambda n: "t" * 24)
    assert creds == {"stations": {"CP1": "t" * 24}}
    assert cfg["ocpp"]["stations"]["CP1"]["password"] == "t" * 24
    with pytest.raises(ValidationError):
        provision.build(ns, token=lambda n: "short")


def test_questions_fill_what_the_flags_leave_out(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    out = tmp_path / "q.json"
    answers = "lab\n40\nraspberry-pi-4b\nCP1=3x16\nvis:CP2=1x32@L2\n\neastron_sdm630@tcp://10.0.0.5:502/1\n\n\n"
    r = subprocess.run([sys.executable, "-m", "edge", "init", "--interactive", "--out", str(out)], input=answers,
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert r.returncode == 0, r.stderr
    cfg = config.load(out)
    assert cfg.site.site_id == "lab" and cfg.site.grid_max_da == 400
    assert [s.id for s in cfg.site.stations()] == ["CP1", "CP2"]
    assert cfg.site.connector("CP2", 1).wiring == (1,)
    assert cfg.meters[0].host == "10.0.0.5" and cfg.cloud is None
    assert cfg.store_path == "/var/lib/edge/edge.db"          # the board's default


def test_without_a_terminal_missing_flags_are_named(tmp_path, capsys):
    assert edge_main(["init", "--out", str(tmp_path / "x.json")]) == 2
    assert "missing --site-id, --grid-a, --station" in capsys.readouterr().err


def test_a_micropython_board_is_refused_for_a_site(tmp_path, capsys):
    assert edge_main(["init", "--site-id", "s", "--grid-a", "20", "--station", "CP1=1x16", "--board", "esp32-devkitc",
                      "--out", str(tmp_path / "x.json")]) == 2
    assert "MicroPython board" in capsys.readouterr().err
