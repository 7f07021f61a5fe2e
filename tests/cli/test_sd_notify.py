"""systemd's notify protocol on a real AF_UNIX datagram socket: what `edge run` tells
systemd (READY, watchdog pings from the control loop, STOPPING), and the Notifier itself."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from edge.sd_notify import Notifier

from .site_files import REPO, example, write


@pytest.fixture
def notify_socket(tmp_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    s.bind(path)
    s.settimeout(0.2)
    yield s, path
    s.close()


def receive(sock, until, deadline_s):
    got = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            continue
        got.append(dict(line.split("=", 1) for line in msg.splitlines()))
        if until(got):
            break
    return got


def test_notifier_sends_to_a_path_and_rate_limits_pings(notify_socket):
    sock, path = notify_socket
    now = [100.0]
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"}, clock=lambda: now[0])
    assert n.enabled and n.watchdog_s == 10.0
    assert n.ready("running")
    assert n.ping()
    now[0] += 4.9
    assert not n.ping()             # within half the period: not again
    now[0] += 0.2
    assert n.ping()
    msgs = receive(sock, lambda g: len(g) == 3, 2)
    assert msgs[0]["READY"] == "1" and msgs[0]["STATUS"] == "running" and msgs[0]["MAINPID"] == str(os.getpid())
    assert msgs[1] == {"WATCHDOG": "1"} and msgs[2] == {"WATCHDOG": "1"}


def test_abstract_socket_and_no_socket():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = "edge-test-%d" % os.getpid()
    s.bind("\0" + name)
    s.settimeout(2)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).status("hello")
        assert s.recv(100) == b"STATUS=hello"
    finally:
        s.close()
    quiet = Notifier({})
    assert not quiet.enabled and not quiet.ready("x") and not quiet.ping()
    other = Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_s is None            # the watchdog is meant for another process


def test_a_vanished_socket_is_logged_once_and_not_fatal(tmp_path, caplog):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert not n.status("a") and not n.status("b")
    assert len([r for r in caplog.records if "cannot notify systemd" in r.message]) == 1


def test_edge_run_reports_ready_pings_from_its_loop_and_says_stopping(tmp_path, notify_socket):
    sock, path = notify_socket
    d = example(tmp_path)
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", str(write(tmp_path, d))], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        msgs = receive(sock, lambda g: sum(m.get("WATCHDOG") == "1" for m in g) >= 3, 30)
        ready = [m for m in msgs if m.get("READY") == "1"]
        assert ready and "OCPP on port %d" % d["ocpp"]["port"] in ready[0]["STATUS"], msgs
        assert ready[0]["MAINPID"] == str(proc.pid)
        assert sum(m.get("WATCHDOG") == "1" for m in msgs) >= 3
        # A stopped process (as a stuck loop) pings no more.
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.3)
        while True:                         # drain what was sent before the stop
            try:
                sock.recv(4096)
            except socket.timeout:
                break
        assert receive(sock, lambda g: True, 1.5) == []
        proc.send_signal(signal.SIGCONT)
        assert receive(sock, lambda g: any(m.get("WATCHDOG") == "1" for m in g), 10)
        proc.send_signal(signal.SIGTERM)
        msgs = receive(sock, lambda g: any(m.get("STOPPING") == "1" for m in g), 20)
        assert any(m.get("STOPPING") == "1" for m in msgs)
        assert proc.wait(timeout=20) == 0
        err = proc.stderr.read()
        assert "INFO edge.alive: alive: 0/2 stations connected, 0 charging, meter grid STALE" in err, err
        assert "allocation failsafe" in err and "cloud off" in err and "outbox 0" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
