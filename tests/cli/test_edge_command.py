"""The `edge` command's frame: subcommands found, help, exit codes, the `edge CONFIG` shorthand."""
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import commands, main

REPO = Path(__file__).resolve().parents[2]


def edge(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "edge", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_every_command_module():
    r = edge("--help")
    assert r.returncode == 0
    for name, mod in commands().items():
        assert name in r.stdout
        assert mod.HELP.split()[0] in r.stdout
    assert "Exit codes: 0 ok, 2 bad input" in r.stdout


@pytest.mark.parametrize("name", ["run", "init", "validate", "flash", "boards"])
def test_each_command_has_help_and_exit_0(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"usage: edge {name}" in capsys.readouterr().out


def test_no_command_shows_help_and_exits_2():
    r = edge()
    assert r.returncode == 2
    assert "commands:" in r.stderr


def test_mistyped_command_is_refused_with_the_list_not_run_as_a_file():
    r = edge("valdate", "x")
    assert r.returncode == 2
    assert "invalid choice: 'valdate'" in r.stderr and "validate" in r.stderr


def test_shorthand_runs_the_config_file(tmp_path):
    r = edge(str(tmp_path / "missing.toml"))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.toml'}: config: cannot be read: No such file or directory "
        f"(got '{tmp_path / 'missing.toml'}')"]


def test_unknown_option_is_bad_input():
    assert edge("boards", "--frobnicate").returncode == 2
