"""`edge install` for a site with meter nodes, then `edge flash`, as an installer runs them:
one broker account per node (password made once, kept in /etc/edge/node-accounts.json,
root 0600), the nodes' ACL and listener; a real Mosquitto started with the installed
files lets a node publish to its own topic only, and `edge flash` writes the node's
configuration from the same account."""
from __future__ import annotations

import io
import json
import os
import pwd
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge.cli import main as edge_main
from host_tools import flash
from host_tools.broker import find_mosquitto, free_port
from host_tools.node_host import mqtt_factory

from .test_install import INIT

GATEWAY_PASSWORD = "gateway-secret-for-the-test"


def node_site(tmp_path: Path, nodes: list[str], nodes_port: int, cloud_port: int) -> Path:
    out = tmp_path / "site.json"
    if not out.exists():
        assert edge_main(INIT + ["--cloud-port", str(cloud_port), "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    d["meters"] = [{"id": "m-" + n, "model": "eastron_sdm630", "source": "node", "node": n, "device_id": 1}
                   for n in nodes]
    d["nodes"] = {"host": "127.0.0.1", "port": nodes_port, "username": "edge.gateway",
                  "password": GATEWAY_PASSWORD}
    out.write_text(json.dumps(d))
    return out


class InstalledBroker:
    """Mosquitto running the installed conf.d/edge.conf, its paths pointed into --root."""

    def __init__(self, root: Path, workdir: Path, ports: list[int]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        conf = (root / "etc/mosquitto/conf.d/edge.conf").read_text()
        conf = conf.replace("/etc/mosquitto/", str(root / "etc/mosquitto") + "/")
        head = ["persistence false", f"log_dest file {workdir / 'mosquitto.log'}", "log_type all"]
        if os.geteuid() == 0:
            head.append("user " + pwd.getpwuid(os.geteuid()).pw_name)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text("\n".join(head) + "\n" + conf)
        self.ports = ports
        self.log = workdir / "mosquitto.log"

    def __enter__(self) -> "InstalledBroker":
        self.proc = subprocess.Popen([find_mosquitto(), "-c", str(self.conf)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        import socket
        for port in self.ports:
            while True:
                assert self.proc.poll() is None, self.proc.stderr.read().decode()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "mosquitto did not listen on %d" % port
                    time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stderr.close()


def login(port: int, user: str, password: str) -> str:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-" + user, protocol=mqtt.MQTTv311)
    c.username_pw_set(user, password)
    got, done = [], threading.Event()
    c.on_connect = lambda *a: (got.append(str(a[3])), done.set())
    c.connect("127.0.0.1", port)
    c.loop_start()
    done.wait(10)
    c.disconnect()
    c.loop_stop()
    return got[0] if got else "no answer"


def flashed_config(tmp_path: Path, node_id: str, accounts: Path) -> dict:
    """What `edge flash` puts on the board as node_config.json (the mpremote runs recorded)."""
    ap = __import__("argparse").ArgumentParser()
    flash.configure(ap)
    args = ap.parse_args(["--board", "esp32-devkitc", "--port", "/dev/ttyUSB0", "--meter", "eastron_sdm630",
                          "--unit", "1", "--node-id", node_id, "--broker", "127.0.0.1",
                          "--accounts", str(accounts)])
    work = tmp_path / ("flash-" + node_id)
    out = io.StringIO()
    assert flash.flash_node(args, runner=lambda cmd: 0, out=out, workdir=work) == 0
    assert f"its broker account from {accounts}" in out.getvalue()
    assert "mosquitto_passwd" not in out.getvalue()         # nothing left to do by hand
    return json.loads((work / "node_config.json").read_text())


def test_nodes_get_accounts_that_the_broker_enforces_and_flash_uses(tmp_path, capsys):
    nodes_port, cloud_port = free_port(), free_port()
    site = node_site(tmp_path, ["garage-1", "garage-2"], nodes_port, cloud_port)
    root = tmp_path / "root"
    root.mkdir()
    assert edge_main(["install", str(site), "--root", str(root), "--broker", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "meter nodes garage-1, garage-2 in /etc/edge/node-accounts.json root 0600" in plan
    assert "new passwords: garage-1, garage-2" in plan and "/etc/mosquitto/nodes.acl" in plan
    assert list(root.iterdir()) == []

    assert edge_main(["install", str(site), "--root", str(root), "--broker"]) == 0
    accounts_file = root / "etc/edge/node-accounts.json"
    assert accounts_file.stat().st_mode & 0o777 == 0o600
    if os.geteuid() == 0:
        assert accounts_file.stat().st_uid == 0
    accounts = json.loads(accounts_file.read_text())
    assert sorted(accounts["nodes"]) == ["garage-1", "garage-2"] and accounts["port"] == nodes_port
    pw1, pw2 = accounts["nodes"]["garage-1"], accounts["nodes"]["garage-2"]
    assert pw1 != pw2 and len(pw1) >= 20
    passwd = (root / "etc/mosquitto/nodes.passwd").read_text()
    assert [line.split(":")[0] for line in passwd.splitlines()] == ["edge.gateway", "garage-1", "garage-2"]
    assert pw1 not in passwd and GATEWAY_PASSWORD not in passwd          # hashed

    cfg1 = flashed_config(tmp_path, "garage-1", accounts_file)
    assert cfg1["broker"] == {"host": "127.0.0.1", "port": nodes_port, "user": "garage-1", "password": pw1}
    cloud = json.loads(site.read_text())["cloud"]

    got = []
    with InstalledBroker(root, tmp_path / "mq", [nodes_port, cloud_port]) as broker:
        # Each listener has its own accounts: a node cannot log in on the cloud's.
        assert login(cloud_port, "lab", cloud["password"]) == "Success"
        assert login(cloud_port, "garage-1", pw1) == "Not authorized"
        assert login(nodes_port, "lab", cloud["password"]) == "Not authorized"
        assert login(nodes_port, "garage-1", "wrong") == "Not authorized"

        gw = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gw")
        gw.username_pw_set("edge.gateway", GATEWAY_PASSWORD)
        subscribed = threading.Event()
        gw.on_subscribe = lambda *a: subscribed.set()
        gw.on_message = lambda c, u, m: got.append((m.topic, m.payload))
        gw.connect("127.0.0.1", nodes_port)
        gw.subscribe("nodes/#", qos=1)
        gw.loop_start()
        try:
            assert subscribed.wait(10)
            # garage-1 logs in as the flashed board would (micropython-lib's umqtt.simple).
            b = cfg1["broker"]
            one = mqtt_factory("garage-1", b["host"], b["port"], b["user"], b["password"], 30)
            one.connect()
            one.publish("nodes/garage-1/reading", b"own")
            one.publish("nodes/garage-2/reading", b"forged")
            one.sock.close()
            two = mqtt_factory("garage-2", "127.0.0.1", nodes_port, "garage-2", pw2, 30)
            two.connect()
            two.publish("nodes/garage-2/status", b"online")
            deadline = time.monotonic() + 10
            while len(got) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)                # a forged message would have come by now
            two.sock.close()
        finally:
            gw.loop_stop()
            gw.disconnect()
        assert got == [("nodes/garage-1/reading", b"own"), ("nodes/garage-2/status", b"online")], \
            broker.log.read_text()[-2000:]
        assert "Denied PUBLISH from garage-1 (d0, q0, r0, m0, 'nodes/garage-2/reading'" in broker.log.read_text()

    # Installed again with garage-2 gone and garage-3 new: garage-1 keeps its password
    # (its board is flashed), garage-2 loses its account, garage-3 gets one.
    node_site(tmp_path, ["garage-1", "garage-3"], nodes_port, cloud_port)
    capsys.readouterr()
    assert edge_main(["install", str(site), "--root", str(root), "--broker", "--force"]) == 0
    assert "new passwords: garage-3; others kept; removed: garage-2" in capsys.readouterr().out
    accounts = json.loads(accounts_file.read_text())
    assert accounts["nodes"]["garage-1"] == pw1 and sorted(accounts["nodes"]) == ["garage-1", "garage-3"]
    acl = (root / "etc/mosquitto/nodes.acl").read_text()
    assert "garage-2" not in acl and "topic write nodes/garage-3/reading" in acl
    with InstalledBroker(root, tmp_path / "mq2", [nodes_port, cloud_port]):
        assert login(nodes_port, "garage-1", pw1) == "Success"
        assert login(nodes_port, "garage-2", pw2) == "Not authorized"
        assert login(nodes_port, "garage-3", accounts["nodes"]["garage-3"]) == "Success"


def test_flash_refuses_a_node_the_install_made_no_account_for(tmp_path, capsys):
    site = node_site(tmp_path, ["garage-1"], free_port(), free_port())
    root = tmp_path / "root"
    root.mkdir()
    assert edge_main(["install", str(site), "--root", str(root)]) == 0
    accounts = root / "etc/edge/node-accounts.json"
    rc = edge_main(["flash", "--board", "esp32-devkitc", "--port", "/dev/ttyUSB0", "--meter", "eastron_sdm630",
                    "--unit", "1", "--node-id", "garage-9", "--broker", "gw.local", "--accounts", str(accounts),
                    "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 2 and "garage-9" in err and "edge install again" in err
    accounts.write_text("{not json")
    assert edge_main(["install", str(site), "--root", str(root)]) == 2
    assert "node-accounts.json" in capsys.readouterr().err


def test_a_gateway_account_without_password_is_refused_before_anything_is_written(tmp_path, capsys):
    site = node_site(tmp_path, ["garage-1"], free_port(), free_port())
    d = json.loads(site.read_text())
    del d["nodes"]["password"]
    site.write_text(json.dumps(d))
    root = tmp_path / "root"
    root.mkdir()
    assert edge_main(["install", str(site), "--root", str(root)]) == 2
    assert "[nodes] needs username and password" in capsys.readouterr().err
    assert list(root.iterdir()) == []
