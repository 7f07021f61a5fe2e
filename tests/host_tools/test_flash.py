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
