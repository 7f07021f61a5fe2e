"""The same promises on a real full file system: a 24 MiB tmpfs in a private mount
namespace (``unshare -rm``, no root needed where user namespaces are allowed), filled
with a plain file. Skipped, saying why, where the machine allows no such namespace; the
SQLITE_FULL tests (test_ocpp_disk_full.py) and the injected free space
(test_ocpp_space_floor.py) cover the same code everywhere."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "tiny_disk_scenario.py"


def _namespace_cmd(mnt: Path) -> list:
    inner = ("mount -t tmpfs -o size=24m tmpfs '%s' && exec '%s' '%s' '%s'"
             % (mnt, sys.executable, SCRIPT, mnt))
    return ["unshare", "-rm", "sh", "-c", inner]


def _namespaces_allowed(tmp: Path) -> str | None:
    if shutil.which("unshare") is None:
        return "no unshare command"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs '%s'" % tmp],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return "no private mount namespace here: %s" % probe.stderr.strip()[:200]
    return None


def test_a_real_full_disk(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    why = _namespaces_allowed(mnt)
    if why is not None:
        pytest.skip(why)
    run = subprocess.run(_namespace_cmd(mnt), capture_output=True, text=True, timeout=120)
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["first_start"] == "Accepted"
    # below the floor (real statvfs): refused and recorded as such, not charged
    assert (out["below_floor_start"], out["below_floor_refused"]) == ("Invalid", "storage_low")
    # full: the stop is not acknowledged, and the wallbox is not blamed for it
    assert out["free_when_full"] < 4096
    assert out["stop_when_full"] == "InternalError"
    assert out["limits_when_full"] == {"CP16/1": "no_transaction"}
    assert out["controllable"] is True
    # room again: the stop as it happened, the alarm gone, new sessions start
    assert out["completed"] == {"stop_reason": "EVDisconnected", "stopped_s": 1748845200,
                                "meter_stop_wh": 8000, "energy_wh": 7000}
    assert out["start_after"] == "Accepted"
    assert out["floor"] == {"low": False, "incidents": 1}
