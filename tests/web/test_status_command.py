"""`edge status` reads a running edge's local API: the installer's view in a terminal."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

from tests.web.conftest import ADMIN_PW, VIEWER_PW, wait_until

REPO = Path(__file__).resolve().parents[2]


async def edge(*args: str, password: str | None = None) -> tuple[int, str, str]:
    env = dict(os.environ)
    env.pop("EDGE_PASSWORD", None)
    if password is not None:
        env["EDGE_PASSWORD"] = password
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "edge", "status", *args, cwd=REPO, env=env,
                                                stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_edge_status_shows_the_site_with_reasons(site):
    assert await site.fleet.plug_in("CP001", 1, "FLEET01", 30000, 16)
    assert await wait_until(lambda: site.svc.last is not None and site.svc.last.limits[("CP001", 1)][0] > 0)
    code, out, err = await edge("--url", site.url, "--events", "30", password=VIEWER_PW)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("site demo  NORMAL")
    assert max(len(line) for line in lines) <= 80
    assert [line.split()[0] for line in lines[2:5]] == ["L1", "L2", "L3"]
    row = next(line for line in lines if line.startswith("CP001 "))
    assert "FL***01" in row and "fleet*" in row and ("max" in row or "full:" in row or "uses less" in row)
    assert "session_started station=CP001" in out
    assert "FLEET01" not in out

    code, out, _ = await edge("--url", site.url, "--user", "admin", "--json", "--events", "0", password=ADMIN_PW)
    assert code == 0
    data = json.loads(out)
    assert data["status"]["site_id"] == "demo" and len(data["connectors"]) == 6 and data["events"] == []


async def test_edge_status_finds_the_api_in_the_site_file_and_says_what_is_wrong(site, tmp_path):
    # The site file of the running edge, as an installer has it on the gateway.
    cfg = tmp_path / "site.json"
    d = {"site": {"site_id": "demo", "timezone": "UTC0", "grid": {"max_current_a": 40},
                  "charging_groups": [{"id": "g", "stations": [{"id": "CP001", "connectors": [
                      {"id": 1, "phases": 3, "min_current_a": 6, "max_current_a": 16}]}]}]},
         "http": {"host": "0.0.0.0", "port": site.svc.http_port,
                  "admin_password_hash": site.svc.cfg.http.admin_hash}}
    cfg.write_text(json.dumps(d))
    pw = tmp_path / "pw"
    pw.write_text(VIEWER_PW + "\n")
    code, out, err = await edge(str(cfg), "--password-file", str(pw))
    assert code == 0, err
    assert "CP004" in out
    code, _, err = await edge(str(cfg), password="wrong password")
    assert code == 2 and "refused the login (HTTP 401)" in err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    code, _, err = await edge("--url", "http://127.0.0.1:%d" % free, password="x")
    assert code == 1 and "cannot read http://127.0.0.1:%d" % free in err
    code, _, err = await edge(str(cfg))      # no password anywhere, no terminal
    assert code == 2 and "no password" in err
    del d["http"]
    cfg.write_text(json.dumps(d))
    code, _, err = await edge(str(cfg), password="x")
    assert code == 2 and "no [http] section" in err
