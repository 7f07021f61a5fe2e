"""The installed package the installer tests share, made once per test session the way
README.md's "Installing on a gateway" says: build the wheel (pure Python, one file for
every gateway, no compiler), then the README's own
apt-get / venv / pip lines, with /opt/edge moved into a temporary folder and apt-get
only simulating (-s: the packages are there to install)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from .readme_steps import block
from .site_files import REPO

INSTALL_LINES = 3      # apt-get, venv, pip: the rest of the block uses what they made


def clean_env(**extra):
    """No source tree on the path: the installed package alone."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra)
    return env


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd}: {r.stdout[-2000:]} {r.stderr[-3000:]}"
    return r


def opt_edge(line: str, venv) -> str:
    return line.replace("/opt/edge", str(venv))


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """The bin directory of a fresh virtualenv with the wheel installed."""
    work = tmp_path_factory.mktemp("wheel")
    src, dist, venv = work / "src", work / "dist", work / "opt" / "edge"
    # What git tracks (and this change's new files): no build/, no in-place .so.
    files = _run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO).stdout.split()
    for f in files:
        if (REPO / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, src / f)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)], timeout=600)
    shutil.rmtree(src)
    wheels = list(dist.glob("edge_controller-*.whl"))
    assert len(wheels) == 1 and wheels[0].name.endswith("-py3-none-any.whl"), wheels   # no compiler needed
    lines = block("installer-steps")[:INSTALL_LINES]
    assert lines[0].startswith("apt-get install -y ") and "venv /opt/edge" in lines[1] \
        and "pip install ./edge_controller-*.whl" in lines[2], lines
    _run(lines[0].replace("apt-get install -y", "apt-get install -s"), shell=True, timeout=120)
    for line in lines[1:]:
        _run(opt_edge(line, venv), shell=True, cwd=dist, env=clean_env(), timeout=600,
             executable="/bin/bash")
    return venv / "bin"
