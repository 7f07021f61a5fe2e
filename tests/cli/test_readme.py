"""README.md, as an installer reads it: every line of its installer block runs (the
install lines in the `installed` fixture, the rest here, into a temporary root), the
flashing block runs, and every option it names for an `edge` command is in that
command's --help."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from edge.cli import commands, main as edge_main

from .conftest import INSTALL_LINES, clean_env, opt_edge
from .readme_steps import block, edge_spans
from .site_files import free_port


def test_every_option_the_readme_names_is_in_the_commands_help(capsys):
    spans = edge_spans()
    named = {c for c, _, _ in spans}
    assert {"init", "validate", "install", "run", "sessions", "history", "simulate", "flash", "boards"} <= named
    known = set(commands())
    for command, action, options in spans:
        assert command in known, f"README names `edge {command}`, which does not exist"
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            edge_main([command] + ([action] if action else []) + ["--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        for option in options:
            assert option in text, f"`edge {command} {action or ''}` has no {option} (README names it)"
    with pytest.raises(SystemExit):
        edge_main(["--help"])
    top = capsys.readouterr().out
    assert all(c in top for c in named)


def test_the_installer_block_runs_into_a_temporary_root(installed, tmp_path):
    venv = installed.parent
    root = tmp_path / "root"
    (root / "var/lib").mkdir(parents=True)
    done = []
    for line in block("installer-steps")[INSTALL_LINES:]:
        cmd = opt_edge(line, venv)
        if line.startswith("systemctl ") or line.startswith("journalctl "):
            continue                     # needs systemd as PID 1: the unit is verified below
        if line.startswith("/opt/edge/bin/edge install "):
            cmd += f" --root {root}"
        cmd = cmd.replace("--ocpp-port 9000", f"--ocpp-port {free_port()}")   # 9000 may be busy here
        cmd = cmd.replace("--out site.json", f"--out site.json --store {root}/var/lib/edge/edge.db")
        r = subprocess.run(cmd, shell=True, cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, f"{line}\n{r.stdout}\n{r.stderr}"
        done.append(line.split()[1] if line.startswith("/opt/edge/bin/edge") else line)
    assert done == ["init", "validate", "install"]
    unit = root / "etc/systemd/system/edge.service"
    assert f"ExecStart={venv}/bin/edge run /etc/edge/site.json" in unit.read_text()
    assert (root / "etc/edge/site.json").stat().st_mode & 0o777 == 0o640
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (make test installs Debian's systemd)")
    r = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_the_flash_block_runs(installed, tmp_path):
    for line in block("flash-steps"):
        assert line.startswith("edge ")
        r = subprocess.run(str(installed / "edge") + line[len("edge"):], shell=True, cwd=tmp_path,
                           env=clean_env(), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{line}\n{r.stdout}\n{r.stderr}"
        assert r.stdout.strip()
