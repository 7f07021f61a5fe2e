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
     (other accounts kept), and /etc/mosquitto/conf.d/edge.conf;
  5. with ``--enable``: ``systemctl daemon-reload`` and ``enable --now``.
Files are written whole (a temporary file, then renamed) and an existing site file
with other content is only replaced with ``--force``: its credentials would be lost.
"""
from __future__ import annotations

import grp
import os
import shutil
import string
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from edge.config import EdgeConfig

DEPLOY = Path(__file__).resolve().parent / "deploy"
USER = "edge"
STATE_DIR = Path("/var/lib/edge")
CONF_DIR = Path("/etc/edge")
UNIT = Path("/etc/systemd/system/edge.service")
SYSUSERS = Path("/etc/sysusers.d/edge.conf")
MOSQUITTO = Path("/etc/mosquitto")


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
                Step(f"write {MOSQUITTO / 'conf.d' / 'edge.conf'} (listener {self.cfg.cloud.host}:"
                     f"{self.cfg.cloud.port}, password file, ACL)", self._mosquitto_conf),
            ]
        if self.enable:
            steps.append(Step("systemctl daemon-reload; systemctl enable --now edge"
                              + ("; systemctl restart mosquitto" if self.broker else ""), self._enable))
        return steps

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
        if not shutil.which("systemd-sysusers"):
            out.append("systemd-sysusers not found: apt-get install systemd")
        if self.enable and self.root != Path("/"):
            out.append("--enable starts the service on this machine; it does not go with --root")
        target = self.at(self.installed_site)
        if target.exists() and not self.force and target.read_bytes() != self.site_file.read_bytes():
            out.append(f"{target} exists with other content; pass --force to replace it "
                       f"(its station passwords are then lost)")
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
        user, password = self.cfg.cloud.username, self.cfg.cloud.password
        target = self.at(MOSQUITTO / "evc.passwd")
        with tempfile.TemporaryDirectory() as tmp:
            plain = Path(tmp) / "one"
            plain.write_text(f"{user}:{password}\n")
            plain.chmod(0o600)
            # -U hashes a plain file in place: the password never appears in a process list.
            _run(["mosquitto_passwd", "-U", str(plain)])
            hashed = plain.read_text().strip()
        kept = []
        if target.exists():
            kept = [line for line in target.read_text().splitlines() if line and line.split(":")[0] != user]
        _write(target, "\n".join(kept + [hashed]) + "\n", 0o640)
        if self.as_root:
            try:
                os.chown(target, 0, grp.getgrnam("mosquitto").gr_gid)
            except KeyError:
                target.chmod(0o644)     # no mosquitto group here: the broker must still read it

    def _mosquitto_conf(self) -> None:
        c = self.cfg.cloud
        text = ("# written by edge install: the site's broker on this gateway (edge/deploy/mosquitto)\n"
                "per_listener_settings false\n"
                "allow_anonymous false\n"
                f"password_file {MOSQUITTO / 'evc.passwd'}\n"
                f"acl_file {MOSQUITTO / 'evc.acl'}\n"
                f"listener {c.port} {c.host}\n")
        _write(self.at(MOSQUITTO / "conf.d" / "edge.conf"), text, 0o644)

    def _enable(self) -> None:
        _run(["systemctl", "daemon-reload"])
        _run(["systemctl", "enable", "--now", "edge"])
        if self.broker:
            _run(["systemctl", "restart", "mosquitto"])


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
