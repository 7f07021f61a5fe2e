"""Meter nodes' broker accounts: made by `edge install`, read by `edge flash`.

Each meter node logs in to the gateway's broker with its own account (user name = node
id) and may write only its own topics (docs/meters.md, "Meter nodes"). `edge install`
keeps the passwords in one file, root's and mode 0600, because two tools need them:
the broker gets them hashed (mosquitto_passwd), and `edge flash` writes the plain
password into the node's configuration when it flashes the board. A password, once
made, is kept by every later install: a flashed node must keep working.

File (JSON)::

    {"version": 1, "port": 1883, "nodes": {"garage-1": "<password>", ...}}

``port`` is the broker port the nodes connect to ([nodes].port of the site file), so
`edge flash` needs no --broker-port.
"""
from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Iterable, Optional

from edge.core.errors import ValidationError

PATH = Path("/etc/edge/node-accounts.json")
VERSION = 1


def new_password() -> str:
    # 144 bits, URL-safe: fits a JSON file, a MicroPython string and mosquitto_passwd.
    return secrets.token_urlsafe(18)


def load(path: Path) -> Optional[dict]:
    """The accounts file, or None when there is none. A file that is there but cannot
    be read or is damaged raises ValidationError (field ``--accounts``)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except PermissionError:
        raise ValidationError("--accounts", str(path), "cannot be read (root's, mode 0600): run this with "
                                                       "sudo, or pass --node-password") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError("--accounts", str(path), "is not valid JSON (line %d: %s); run edge install "
                                                       "again to rewrite it" % (exc.lineno, exc.msg)) from None
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if (not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(nodes, dict)
            or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in nodes.items())):
        raise ValidationError("--accounts", str(path), "is not a node accounts file of version %d "
                                                       "(written by edge install)" % VERSION)
    return data


def merged(existing: Optional[dict], node_ids: Iterable[str], port: int) -> tuple[dict, list[str]]:
    """The accounts for exactly ``node_ids``: kept passwords, new ones for new nodes.
    Returns (accounts file content, ids that got a new password)."""
    old = existing["nodes"] if existing else {}
    nodes, created = {}, []
    for node_id in sorted(set(node_ids)):
        if node_id in old:
            nodes[node_id] = old[node_id]
        else:
            nodes[node_id] = new_password()
            created.append(node_id)
    return {"version": VERSION, "port": port, "nodes": nodes}, created


def dump(accounts: dict) -> str:
    return json.dumps(accounts, indent=1, sort_keys=True) + "\n"


def password_of(accounts: dict, node_id: str, path: Path) -> str:
    """The node's password from an accounts file, or a ValidationError saying how to get one."""
    password = accounts["nodes"].get(node_id)
    if password is None:
        raise ValidationError("--node-id", node_id,
                              "has no broker account in %s: add its meter to the site file (source = \"node\", "
                              "node = \"%s\") and run edge install again, or pass --node-password" % (path, node_id))
    return password


def acl(gateway_user: str, node_ids: Iterable[str]) -> str:
    """The broker ACL for these nodes: each writes only its own two topics, reads
    nothing; the gateway reads them all. Accounts not named here get nothing."""
    lines = ["# written by edge install from the site file's meters (edge/node_accounts.py).",
             "# Each node writes only nodes/<its id>/reading and /status; the gateway reads all.",
             "# Mosquitto denies whatever is not granted here (a denied publish is dropped and",
             "# logged). Run edge install again after adding or removing a node.",
             "",
             "user %s" % gateway_user,
             "topic read nodes/+/reading",
             "topic read nodes/+/status"]
    for node_id in sorted(set(node_ids)):
        lines += ["", "user %s" % node_id,
                  "topic write nodes/%s/reading" % node_id,
                  "topic write nodes/%s/status" % node_id]
    return "\n".join(lines) + "\n"
