"""Site files for the command-line tests: the example site, made runnable on loopback."""
from __future__ import annotations

import json
import socket
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def example(tmp_path: Path) -> dict:
    """The example site on loopback: free OCPP port, a meter nobody answers, no cloud, store in tmp."""
    d = tomllib.loads((REPO / "examples" / "site.toml").read_text())
    d["ocpp"].update(host="127.0.0.1", port=free_port())
    d["meters"][0].update(host="127.0.0.1", port=free_port())
    del d["cloud"]
    d["store"]["path"] = str(tmp_path / "state" / "edge.db")
    return d


def write(tmp_path: Path, d: dict, name: str = "site.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return p
