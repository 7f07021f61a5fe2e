"""Install a checked site file on this Linux gateway as a systemd service.

Creates the service user `edge`, /etc/edge with the site file, the store's
directory, and /etc/systemd/system/edge.service (Type=notify with a watchdog,
Restart=on-failure, hardening). `--broker` also sets up this machine's Mosquitto
for the site (ACL, the site's account, a listener). A site with meter nodes gets one
broker account per node (passwords kept in /etc/edge/node-accounts.json, root 0600,
for `edge flash`), and, when [nodes].host is this machine, the nodes' password file,
ACL and listener. `--enable` starts the service.
`--root DIR` installs into a folder instead of /, `--dry-run` prints the plan.

The site file is checked first as `edge validate` does (without the port check: a
running service holds its port). Exit 2: a wrong site file or option; 1: a step failed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli._exit import FAILURE, Abort

HELP = "install the site as a systemd service (user, directories, unit, broker account)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="the site file to install (from `edge init`)")
    p.add_argument("--root", type=Path, default=Path("/"), help="install into this folder instead of /")
    p.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    p.add_argument("--broker", action="store_true",
                   help="this gateway runs the site's Mosquitto: install its ACL, account and listener")
    p.add_argument("--enable", action="store_true", help="then systemctl enable --now edge")
    p.add_argument("--force", action="store_true", help="replace an installed site file with other content")


def run(args: argparse.Namespace) -> int:
    from edge import preflight
    from edge.cli._config import load
    from edge.install import Installer, InstallError
    cfg = load(str(args.config))
    problems = [p for p in preflight.environment_errors(cfg, ports=False)
                if p.field != "store.path"]          # the store's directory is made below
    if problems:
        raise Abort([f"{args.config}: {p}" for p in problems])
    root = args.root.resolve()
    if not root.is_dir():
        raise Abort(f"--root {args.root}: no such directory")
    inst = Installer(cfg, args.config, root, broker=args.broker, force=args.force, enable=args.enable)
    refused = inst.check()
    if refused:
        raise Abort(refused)
    where = "" if root == Path("/") else f" under {root}"
    for n, step in enumerate(inst.plan(), 1):
        print(f"[{n}] {step.text}")
        if args.dry_run:
            continue
        try:
            step.action()
        except InstallError as exc:
            raise Abort(str(exc), FAILURE) from None
        except OSError as exc:
            raise Abort(f"step {n} failed: {exc}", FAILURE) from None
    if args.dry_run:
        print(f"dry run: nothing changed{where}")
    elif not args.enable:
        print(f"installed{where}. Start it with: systemctl daemon-reload && systemctl enable --now edge; "
              "follow it with: journalctl -u edge -f")
    return 0
