"""The flashing tool. No board is attached here, so mpremote itself is replaced by a
recording runner; the command lines it receives are what a board would get."""
import io
import json

import pytest

from edge.core.errors import ValidationError
from host_tools import flash
from host_tools.boards import load_board


class Recorder:
    def __init__(self, fail_at=None):
        self.cmds = []
        self.fail_at = fail_at

    def __call__(self, cmd):
        self.cmds.append(list(cmd))
        return 1 if len(self.cmds) == self.fail_at else 0


def test_plan_installs_umqtt_then_copies_every_core_module():
    board = load_board("esp32-devkitc")
    cmds = flash.plan(board, "/dev/ttyUSB0")
    assert all(c[:3] == ["mpremote", "connect", "/dev/ttyUSB0"] for c in cmds)
    assert cmds[0][3:] == ["mip", "install", "umqtt.simple"]
    copied = [c[-1] for c in cmds if c[3:5] == ["fs", "cp"]]
    expected = [":lib/edge/__init__.py"] + [":lib/edge/core/" + p.name for p in flash.core_files()[1:]]
    assert copied == expected
    assert ":lib/edge/core/__init__.py" in copied
    mkdir_idx = next(i for i, c in enumerate(cmds) if c[3] == "exec")
    first_cp = next(i for i, c in enumerate(cmds) if c[3:5] == ["fs", "cp"])
    assert mkdir_idx < first_cp
    assert cmds[-1][3:] == ["reset"]


def test_no_adapter_module_goes_onto_a_board():
    for f in flash.core_files():
        assert f.parent.name in ("core", "edge")
        src = f.read_text()
        for banned in ("import sqlite3", "import asyncio", "import ocpp", "import pymodbus", "import paho"):
            assert banned not in src, (f, banned)


def test_linux_gateway_is_not_flashed():
    with pytest.raises(ValidationError) as err:
        flash.plan(load_board("raspberry-pi-4b"), "/dev/ttyUSB0")
    assert err.value.field == "board"


def test_flash_runs_every_step_and_copies_config(tmp_path):
    cfg = tmp_path / "board.json"
    cfg.write_text(json.dumps({"site": {"site_id": "s1"}}))
    rec = Recorder()
    assert flash.flash("rp2-pico-w", "/dev/ttyACM0", cfg, runner=rec, out=io.StringIO()) == 0
    assert rec.cmds[-2][3:] == ["fs", "cp", str(cfg), ":edge_config.json"]


def test_flash_stops_at_the_first_failing_step_and_says_which():
    rec = Recorder(fail_at=2)
    out = io.StringIO()
    assert flash.flash("esp32-devkitc", "/dev/ttyUSB0", None, runner=rec, out=out) == 1
    assert len(rec.cmds) == 2
    assert "step 2 failed" in out.getvalue()


def test_dry_run_runs_nothing():
    rec = Recorder()
    out = io.StringIO()
    assert flash.flash("esp32-devkitc", "/dev/ttyUSB0", None, runner=rec, dry_run=True, out=out) == 0
    assert rec.cmds == []
    assert "mip install umqtt.simple" in out.getvalue()


def test_config_too_large_for_the_heap_is_refused(tmp_path):
    cfg = tmp_path / "big.json"
    cfg.write_text(json.dumps({"tokens": ["x" * 20] * 3000}))
    with pytest.raises(ValidationError) as err:
        flash.flash("esp32-devkitc", "/dev/ttyUSB0", cfg, runner=Recorder(), out=io.StringIO())
    assert "too large" in str(err.value)


def test_config_that_is_not_json_is_refused(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text("site = 1")
    with pytest.raises(ValidationError):
        flash.flash("esp32-devkitc", "/dev/ttyUSB0", cfg, runner=Recorder(), out=io.StringIO())


def test_cli_reports_unknown_board_with_exit_2(capsys):
    assert flash.main(["--board", "nope", "--port", "/dev/ttyUSB0"]) == 2
    assert "known boards" in capsys.readouterr().err


def node_args(**over):
    import argparse
    ap = argparse.ArgumentParser()
    flash.configure(ap)
    argv = ["--board", "esp32-devkitc", "--port", "/dev/ttyUSB0", "--meter", "eastron_sdm630", "--unit", "1",
            "--node-id", "garage-1", "--broker", "192.168.1.10", "--node-password", "pw-123",
            "--wifi-ssid", "site"]
    for k, v in over.items():
        argv += ["--" + k.replace("_", "-")] + ([] if v is True else [str(v)])
    return ap.parse_args(argv)


@pytest.mark.parametrize("board", ["esp32-devkitc", "esp32-s3-psram", "rp2-pico-w"])
def test_node_dry_run_prints_every_mpremote_command_for_each_micropython_board(board, capsys):
    from host_tools import node_flash
    rec = Recorder()
    out = io.StringIO()
    assert flash.flash_node(node_args(board=board, dry_run=True), runner=rec, out=out) == 0
    assert rec.cmds == []
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("[")]
    files = node_flash.node_files()
    assert len(lines) == 1 + 1 + len(files) + 2 + 1
    assert all("mpremote connect /dev/ttyUSB0 " in ln for ln in lines)
    assert lines[0].endswith("mip install umqtt.simple")
    for src, dest in files:
        assert any(ln.endswith("fs cp %s :%s" % (src, dest)) for ln in lines), dest
    assert lines[-3].endswith(":node_config.json") and lines[-2].endswith(":main.py")
    assert lines[-1].endswith("reset")


def test_node_flash_runs_the_steps_and_writes_the_board_config(tmp_path):
    rec = Recorder()
    workdir = tmp_path / "w"
    assert flash.flash_node(node_args(board="rp2-pico-w"), runner=rec, out=io.StringIO(), workdir=workdir) == 0
    cfg = json.loads((workdir / "node_config.json").read_text())
    assert cfg["uart"] == {"id": 0, "tx": 0, "rx": 1, "de": 2, "baudrate": 9600, "parity": "N", "stopbits": 1}
    assert cfg["broker"] == {"host": "192.168.1.10", "port": 1883, "user": "garage-1", "password": "pw-123"}
    assert cfg["meters"] == [{"unit": 1, "model": "eastron_sdm630", "fc": 4,
                              "blocks": [[0, 18], [52, 2], [72, 4]]}]
    assert (workdir / "node_config.json").stat().st_mode & 0o077 == 0     # it holds a password
    assert (workdir / "main.py").read_text() == "from edge.node import board\nboard.main()\n"
    assert rec.cmds[-1][3:] == ["reset"]


def test_node_flash_without_password_makes_one_and_says_how_to_add_the_account():
    out = io.StringIO()
    args = node_args()
    args.node_password = None
    assert flash.flash_node(args, runner=Recorder(), out=out) == 0
    assert "mosquitto_passwd -b /etc/mosquitto/nodes.passwd garage-1 " in out.getvalue()


@pytest.mark.parametrize("over, field", [
    ({"meter": "no_such_meter"}, "--meter[1]"),
    ({"node_id": "Garage 1"}, "--node-id"),
    ({"board": "raspberry-pi-4b"}, "--board"),
    ({"baudrate": 9601}, "node config uart.baudrate"),
])
def test_node_flash_refuses_wrong_arguments(over, field):
    args = node_args(**{k: v for k, v in over.items() if k != "meter"})
    if "meter" in over:
        args.meter.append(over["meter"])
        args.unit.append(2)
    with pytest.raises(ValidationError) as err:
        flash.flash_node(args, runner=Recorder(), out=io.StringIO())
    assert err.value.field == field


def test_edge_flash_command_takes_the_node_options(capsys):
    from edge.cli import main as edge_main
    rc = edge_main(["flash", "--board", "esp32-devkitc", "--port", "/dev/ttyUSB0", "--meter", "abb_b23",
                    "--unit", "3", "--node-id", "n1", "--broker", "gw.local", "--dry-run"])
    assert rc == 0
    assert ":lib/edge/node/rtu.py" in capsys.readouterr().out


def test_a_sunspec_meter_gets_its_search_plan_not_fixed_addresses(tmp_path):
    args = node_args()
    args.meter.append("sunspec_meter")
    args.unit.append(240)
    assert flash.flash_node(args, runner=Recorder(), out=io.StringIO(), workdir=tmp_path) == 0
    entry = json.loads((tmp_path / "node_config.json").read_text())["meters"][1]
    assert entry["sunspec"] == {"bases": [40000, 0, 50000], "ids": [201, 202, 203, 204], "length": 105}
    assert entry["blocks"][0][0] >= 2          # counted from the model's ID register


def test_the_files_a_node_gets_are_all_its_program_imports(tmp_path):
    """A board holds only what `edge flash --meter` copies: import the node's board
    module from a folder laid out like the board's /lib (machine and umqtt stood in)."""
    import subprocess
    import sys
    from host_tools import node_flash
    for src, dest in node_flash.node_files():
        target = tmp_path / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(src.read_bytes())
    probe = ("import sys, types\n"
             "sys.path[:] = [p for p in sys.path if 'site-packages' in p or 'lib/python' in p]\n"
             "sys.path.insert(0, %r)\n"
             "sys.modules['machine'] = types.ModuleType('machine')\n"
             "import edge.node.board, edge.node.app\n"
             "assert edge.node.board.__file__.startswith(%r), edge.node.board.__file__\n"
             "print(sorted(m for m in sys.modules if m.startswith('edge')))\n") % (
        str(tmp_path / "lib"), str(tmp_path))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "edge.node.sunspec" in out.stdout and "edge.core.errors" in out.stdout
    assert "edge.meters" not in out.stdout
