"""The command lines of host_tools/broker.py and host_tools/cloud_peer.py, as
`make run` and a developer use them."""
from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys

from .conftest import REPO, eventually
from .edge_harness import Edge
from .samples import SITE_ID, snapshot


def spawn(log, *args):
    return subprocess.Popen([sys.executable, "-m", *args], cwd=str(REPO), text=True,
                            stdout=subprocess.PIPE, stderr=log)


async def test_broker_and_peer_command_lines_serve_an_edge(tmp_path):
    log = open(tmp_path / "cli.log", "w")
    broker = spawn(log, "host_tools.broker", "--dir", str(tmp_path / "broker"))
    peer = None
    try:
        line = await asyncio.to_thread(broker.stdout.readline)
        port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        snap = tmp_path / "snapshot.json"
        snap.write_text(json.dumps(snapshot(7)))
        peer = spawn(log, "host_tools.cloud_peer", "--port", str(port), "--site", SITE_ID,
                     "--snapshot", str(snap), "--remote-start", "CP001:1:pi_cli")
        sent = await asyncio.to_thread(peer.stdout.readline)
        assert sent.startswith("snapshot sent as c-"), sent
        # The edge connects after the push (it had no session then): it asks for a
        # snapshot, the peer serves the file, and sends the remote start once online.
        edge = Edge(str(tmp_path / "edge.db"), port)
        await edge.start()
        try:
            await eventually(lambda: edge.holder.version == 7, "snapshot served on request")
            await eventually(lambda: edge.commands, "remote start from the command line")
            assert edge.commands[0]["payment_ref"] == "pi_cli"
            printed = []
            while not any(" command_reply " in l for l in printed):
                printed.append(await asyncio.to_thread(peer.stdout.readline))
            assert any(l.startswith(SITE_ID + " snapshot_request ") for l in printed)
            assert any(l.startswith(SITE_ID + " online ") for l in printed)
        finally:
            await edge.stop()
    finally:
        for proc in (peer, broker):
            if proc is None:
                continue
            proc.send_signal(signal.SIGINT if proc is peer else signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        log.close()
    assert broker.returncode == 0 and peer.returncode == 0, (tmp_path / "cli.log").read_text()
