"""`edge install`: put a checked site file on a Linux gateway and make it a systemd service.

What it does, in order (``plan()`` lists it; ``--dry-run`` prints that list):
  1. the service user ``edge`` (system account, no login, in group ``dialout`` for
     RS-485 adapters), declared in /etc/sysusers.d/edge.conf and created with
     ``systemd-sysusers`` (which also works into a folder: ``--root``);
  2. /etc/edge (root:edge 0750) with the site file (root:edge 0640: it holds the
     station passwords), and the store's directory (edge:edge 0750);
  3. /etc/systemd/system/edge.service from the template shipped in the package
     (edge/deploy/systemd/edge.service): Type=notify with a watchdog, restarts on
     failure but not on bad input (exit 2), hardening;
  4. with ``--broker`` (this gateway also runs the site's Mosquitto): the ACL from
     edge/deploy/mosquitto, the site's account hashed into /etc/mosquitto/evc.passwd
     (other accounts kept), and its listener in /etc/mosquitto/conf.d/edge.conf;
  5. a site with meter nodes (``source = "node"``): one broker account per node, its
     password made here and kept in /etc/edge/node-accounts.json (root 0600) for
     `edge flash` (edge/node_accounts.py); when the [nodes] broker is this machine,
     /etc/mosquitto/nodes.passwd (the gateway's account and the nodes', hashed),
     /etc/mosquitto/nodes.acl (each node writes only its own topics) and the nodes'
     listener in edge.conf, with its own password file and ACL
     (``per_listener_settings true``: a node's account cannot log in on the cloud
     listener, nor a site's on the nodes' one);
  6. with ``--enable``: ``systemctl daemon-reload`` and ``enable --now``.
Files are written whole (a temporary file, then renamed) and an existing site file
with other content is only replaced with ``--force``: its credentials would be lost.
"""
from __future__ import annotations

import grp
import os
import re
import shutil
import socket
import string
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from edge import node_accounts
from edge.config import EdgeConfig
from edge.core.errors import ValidationError

DEPLOY = Path(__file__).resolve().parent / "deploy"
USER = "edge"
STATE_DIR = Path("/var/lib/edge")
CONF_DIR = Path("/etc/edge")
UNIT = Path("/etc/systemd/system/edge.service")
SYSUSERS = Path("/etc/sysusers.d/edge.conf")
MOSQUITTO = Path("/etc/mosquitto")
NODE_ACCOUNTS = node_accounts.PATH
# A broker user name that is safe inside an ACL and a password file line.
BROKER_USER = re.compile(r"[A-Za-z0-9._-]{1,64}")


class InstallError(Exception):
    """A step cannot be done; the message says what to do."""


class Step:
    def __init__(self, text: str, action: Callable[[], None] | None = None) -> None:
        self.text = text
        self.action = action


def edge_command() -> list[str]:
    """How systemd starts this same installation: its `edge` script, or this Python."""
    script = Path(sys.executable).parent / "edge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "edge"]


class Installer:
    def __init__(self, cfg: EdgeConfig, site_file: Path, root: Path = Path("/"), *, broker: bool = False,
                 force: bool = False, enable: bool = False) -> None:
        self.cfg = cfg
        self.site_file = site_file
        self.root = root
        self.broker = broker
        self.force = force
        self.enable = enable
        self.installed_site = CONF_DIR / ("site" + (site_file.suffix or ".json"))
        self.store_dir = Path(cfg.store_path).parent
        self.as_root = os.geteuid() == 0
        self.node_ids = sorted({m.node for m in cfg.meters if m.source == "node"})
        self.nodes_here = bool(self.node_ids) and cfg.nodes is not None and _is_this_machine(cfg.nodes.host)
        self._accounts: dict | None = None

    def at(self, path: Path) -> Path:
        """Where a system path lands under --root."""
        return self.root / path.relative_to("/")

    # -- the plan --------------------------------------------------------------------------
    def plan(self) -> list[Step]:
        steps = [
            Step(f"declare the service user {USER} in {SYSUSERS} and create it (systemd-sysusers)", self._user),
            Step(f"create {CONF_DIR} root:{USER} 0750", lambda: self._dir(CONF_DIR, "root", 0o750)),
            Step(f"create {self.store_dir} {USER}:{USER} 0750 (the store)",
                 lambda: self._dir(self.store_dir, USER, 0o750)),
            Step(f"copy {self.site_file} to {self.installed_site} root:{USER} 0640", self._site),
            Step(f"write {UNIT} (runs: {' '.join(self.exec_start())})", self._unit),
        ]
        if self.broker:
            user = self.cfg.cloud.username
            steps += [
                Step(f"copy the ACL to {MOSQUITTO / 'evc.acl'}", self._acl),
                Step(f"add the account {user} to {MOSQUITTO / 'evc.passwd'} (hashed by mosquitto_passwd; "
                     f"other accounts kept)", self._passwd),
            ]
        if self.node_ids:
            steps += self._node_steps()
        if self.broker or self.nodes_here:
            steps.append(Step(f"write {MOSQUITTO / 'conf.d' / 'edge.conf'} ({self._listeners_text()})",
                              self._mosquitto_conf))
        if self.enable:
            steps.append(Step("systemctl daemon-reload; systemctl enable --now edge"
                              + ("; systemctl restart mosquitto" if self.broker or self.nodes_here else ""),
                              self._enable))
        return steps

    def _node_steps(self) -> list[Step]:
        existing = node_accounts.load(self.at(NODE_ACCOUNTS)) or {"nodes": {}}
        new = [n for n in self.node_ids if n not in existing["nodes"]]
        gone = sorted(set(existing["nodes"]) - set(self.node_ids))
        text = (f"broker accounts of the meter nodes {', '.join(self.node_ids)} in {NODE_ACCOUNTS} root 0600 "
                f"(new passwords: {', '.join(new) or 'none'}; others kept"
                + (f"; removed: {', '.join(gone)}" if gone else "") + ")")
        steps = [Step(text, self._node_accounts)]
        gateway = self.cfg.nodes.username
        if self.nodes_here:
            steps += [
                Step(f"write {MOSQUITTO / 'nodes.passwd'} (accounts {gateway} and {len(self.node_ids)} "
                     f"node(s), hashed by mosquitto_passwd)", self._nodes_passwd),
                Step(f"write {MOSQUITTO / 'nodes.acl'} (each node writes only nodes/<its id>/reading and "
                     f"/status; {gateway} reads them)", self._nodes_acl),
            ]
        else:
            steps.append(Step(f"the nodes' broker {self.cfg.nodes.host} is another machine: create the "
                              f"accounts there from {NODE_ACCOUNTS} (edge/deploy/mosquitto/README.md)", lambda: None))
        return steps

    def _listeners_text(self) -> str:
        parts = []
        if self.broker:
            parts.append(f"cloud listener {self.cfg.cloud.host}:{self.cfg.cloud.port} with evc.passwd, evc.acl")
        if self.nodes_here:
            parts.append(f"nodes listener on port {self.cfg.nodes.port}, all interfaces, with nodes.passwd, "
                         f"nodes.acl")
        return "; ".join(parts)

    def check(self) -> list[str]:
        """What stops the install before anything is written."""
        out = []
        if self.broker:
            if self.cfg.cloud is None or not self.cfg.cloud.username or not self.cfg.cloud.password:
                out.append("--broker needs a [cloud] section with username and password in the site file")
            elif self.cfg.cloud.tls is not None:
                out.append("--broker sets up a plain listener; a TLS broker needs its certificates "
                           "(see edge/deploy/mosquitto/README.md), or create the site with --cloud-plain")
            if not shutil.which("mosquitto_passwd"):
                out.append("--broker needs mosquitto_passwd: apt-get install mosquitto")
        out += self._check_nodes()
        if not shutil.which("systemd-sysusers"):
            out.append("systemd-sysusers not found: apt-get install systemd")
        if self.enable and self.root != Path("/"):
            out.append("--enable starts the service on this machine; it does not go with --root")
        target = self.at(self.installed_site)
        if target.exists() and not self.force and target.read_bytes() != self.site_file.read_bytes():
            out.append(f"{target} exists with other content; pass --force to replace it "
                       f"(its station passwords are then lost)")
        return out

    def _check_nodes(self) -> list[str]:
        if not self.node_ids or self.cfg.nodes is None:
            return []
        out = []
        gateway = self.cfg.nodes.username
        if self.nodes_here:
            if not gateway or not self.cfg.nodes.password:
                out.append("[nodes] needs username and password: edge install creates that account on this "
                           "machine's broker for the gateway")
            elif not BROKER_USER.fullmatch(gateway) or gateway in self.node_ids:
                out.append(f"[nodes].username {gateway!r}: use letters, digits, '.', '-', '_' and a name no "
                           f"node has (the default edge.gateway)")
            if not shutil.which("mosquitto_passwd"):
                out.append("meter nodes need this machine's Mosquitto (mosquitto_passwd not found): "
                           "apt-get install mosquitto")
            if self.broker and self.cfg.cloud is not None and self.cfg.cloud.port == self.cfg.nodes.port:
                out.append(f"the cloud listener and the nodes' listener both want port {self.cfg.nodes.port}: "
                           f"give [nodes] its own port (1883 is usual for the nodes)")
        try:
            node_accounts.load(self.at(NODE_ACCOUNTS))
        except ValidationError as exc:
            out.append(f"{exc.value}: {exc.message}")
        return out

    def exec_start(self) -> list[str]:
        return [*edge_command(), "run", str(self.installed_site)]

    # -- the steps -------------------------------------------------------------------------
    def _user(self) -> None:
        text = (f'# written by edge install: the edge controller\'s service account\n'
                f'u {USER} - "EV charging edge controller" {STATE_DIR} /usr/sbin/nologin\n'
                f'm {USER} dialout\n')
        _write(self.at(SYSUSERS), text, 0o644)
        _run(["systemd-sysusers", f"--root={self.root}", str(self.at(SYSUSERS))])

    def _ids(self, name: str) -> tuple[int, int]:
        """uid and gid of a name in the target's /etc/passwd (a --root has its own)."""
        if name == "root":
            return 0, 0
        for line in self.at(Path("/etc/passwd")).read_text().splitlines():
            parts = line.split(":")
            if parts[0] == name:
                return int(parts[2]), int(parts[3])
        raise InstallError(f"user {name} is not in {self.at(Path('/etc/passwd'))}")

    def _own(self, path: Path, owner: str, group: str = USER) -> None:
        if not self.as_root:
            return                  # a test install as a normal user: modes only
        uid = self._ids(owner)[0]
        gid = self._ids(group)[1]
        os.chown(path, uid, gid)

    def _dir(self, path: Path, owner: str, mode: int) -> None:
        target = self.at(path)
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(mode)
        self._own(target, owner)

    def _site(self) -> None:
        target = self.at(self.installed_site)
        _write(target, self.site_file.read_bytes(), 0o640)
        self._own(target, "root")

    def _unit(self) -> None:
        template = string.Template((DEPLOY / "systemd" / "edge.service").read_text())
        extra_rw = "" if self.store_dir == STATE_DIR else f"ReadWritePaths={self.store_dir}"
        caps = ("AmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE"
                if 0 < self.cfg.ocpp.port < 1024 else "")
        text = template.substitute(exec_start=" ".join(_quote(a) for a in self.exec_start()), user=USER, group=USER,
                                   read_write_paths=extra_rw, capabilities=caps)
        _write(self.at(UNIT), text, 0o644)

    def _acl(self) -> None:
        _write(self.at(MOSQUITTO / "evc.acl"), (DEPLOY / "mosquitto" / "acl").read_bytes(), 0o644)

    def _passwd(self) -> None:
        user = self.cfg.cloud.username
        target = self.at(MOSQUITTO / "evc.passwd")
        hashed = _hashed({user: self.cfg.cloud.password})
        kept = []
        if target.exists():
            kept = [line for line in target.read_text().splitlines() if line and line.split(":")[0] != user]
        self._broker_secret(target, "\n".join(kept + hashed) + "\n")

    def _broker_secret(self, target: Path, text: str) -> None:
        """A hashed password file: readable by root and the broker only."""
        _write(target, text, 0o640)
        if self.as_root:
            try:
                os.chown(target, 0, grp.getgrnam("mosquitto").gr_gid)
            except KeyError:
                target.chmod(0o644)     # no mosquitto group here: the broker must still read it

    def _node_accounts(self) -> None:
        target = self.at(NODE_ACCOUNTS)
        accounts, _ = node_accounts.merged(node_accounts.load(target), self.node_ids, self.cfg.nodes.port)
        _write(target, node_accounts.dump(accounts), 0o600)
        if self.as_root:
            os.chown(target, 0, 0)
        self._accounts = accounts

    def _nodes_passwd(self) -> None:
        users = {self.cfg.nodes.username: self.cfg.nodes.password, **self._accounts["nodes"]}
        # The file is this installer's alone: written whole, so a removed node loses its account.
        self._broker_secret(self.at(MOSQUITTO / "nodes.passwd"), "\n".join(_hashed(users)) + "\n")

    def _nodes_acl(self) -> None:
        _write(self.at(MOSQUITTO / "nodes.acl"), node_accounts.acl(self.cfg.nodes.username, self.node_ids), 0o644)

    def _mosquitto_conf(self) -> None:
        # Each listener has its own accounts and ACL: the cloud link's broker and the
        # meter nodes' broker share a process, never their users.
        lines = ["# written by edge install: the broker on this gateway (edge/deploy/mosquitto/README.md)",
                 "per_listener_settings true"]
        if self.broker:
            c = self.cfg.cloud
            lines += ["", "# the cloud link (the site's account; edge/deploy/mosquitto/acl)",
                      f"listener {c.port} {c.host}", "allow_anonymous false",
                      f"password_file {MOSQUITTO / 'evc.passwd'}", f"acl_file {MOSQUITTO / 'evc.acl'}"]
        if self.nodes_here:
            lines += ["", "# meter nodes on the site network (the gateway's and one account per node)",
                      f"listener {self.cfg.nodes.port}", "allow_anonymous false",
                      f"password_file {MOSQUITTO / 'nodes.passwd'}", f"acl_file {MOSQUITTO / 'nodes.acl'}"]
        _write(self.at(MOSQUITTO / "conf.d" / "edge.conf"), "\n".join(lines) + "\n", 0o644)

    def _enable(self) -> None:
        _run(["systemctl", "daemon-reload"])
        _run(["systemctl", "enable", "--now", "edge"])
        if self.broker or self.nodes_here:
            _run(["systemctl", "restart", "mosquitto"])


def _hashed(users: dict[str, str]) -> list[str]:
    """``user:hash`` lines made by mosquitto_passwd."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "plain"
        plain.touch(mode=0o600)
        plain.write_text("".join(f"{user}:{password}\n" for user, password in users.items()))
        # -U hashes a plain file in place: the passwords never appear in a process list.
        _run(["mosquitto_passwd", "-U", str(plain)])
        return [line for line in plain.read_text().splitlines() if line]


def _is_this_machine(host: str) -> bool:
    """Does ``host`` name this machine (loopback, its name, one of its addresses)?
    Binding to an address works only for an address this machine has."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    for family, _, _, _, addr in infos:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.bind((addr[0], 0))
            return True
        except OSError:
            continue
    return False


def _quote(arg: str) -> str:
    # systemd splits ExecStart= like a shell (quotes, no variables); a path with spaces needs them.
    return f'"{arg}"' if any(c in arg for c in ' "\\$%') else arg


def _write(path: Path, data: str | bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _run(cmd: list[str]) -> None:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        raise InstallError(f"{cmd[0]} cannot be run: {exc.strerror}") from None
    if r.returncode != 0:
        raise InstallError(f"{' '.join(cmd)} failed (exit {r.returncode}): {r.stderr.strip()[:300]}")
