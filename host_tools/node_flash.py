"""`edge flash --meter ...`: turn a MicroPython board into a meter node.

What the board gets (docs/meters.md, "Meter nodes"):
  - micropython-lib's umqtt.simple, installed on the board with `mpremote mip install`
  - lib/edge/__init__.py, the two core modules the node imports (edge/core/__init__.py,
    errors.py) and the node program lib/edge/node/*.py
  - node_config.json: made here from the board file (UART, pins), the meter model
    files (each model's read plan: the compact form, so no model file goes on the
    board) and the command line, checked with the node's own parser
  - main.py, which starts the node at every boot
"""
from __future__ import annotations

import json
import secrets
from pathlib import Path

from edge.core.errors import ValidationError
from edge.meters.model import load_model
from edge.node.config import parse, valid_node_id

REPO = Path(__file__).resolve().parent.parent
CORE_MODULES = ("__init__.py", "errors.py")
MIP_PACKAGES = ("umqtt.simple",)
MAIN_PY = "from edge.node import board\nboard.main()\n"
MKDIRS = ("import os\n"
          "for d in ('lib', 'lib/edge', 'lib/edge/core', 'lib/edge/node'):\n"
          "    try:\n"
          "        os.mkdir(d)\n"
          "    except OSError:\n"
          "        pass\n")


def node_files(repo: Path = REPO) -> list[tuple[Path, str]]:
    """(source, path on the board) of every program file a node needs."""
    files = [(repo / "edge" / "__init__.py", "lib/edge/__init__.py")]
    files += [(repo / "edge" / "core" / n, "lib/edge/core/" + n) for n in CORE_MODULES]
    files += [(p, "lib/edge/node/" + p.name) for p in sorted((repo / "edge" / "node").glob("*.py"))]
    return files


def meter_entry(model_name: str, unit: int, field: str) -> dict:
    try:
        model = load_model(model_name)
    except ValidationError as exc:
        raise ValidationError(field, model_name, exc.message) from None
    entry = {"unit": unit, "model": model.name, "fc": model.function_code,
             "blocks": [list(b) for b in model.read_blocks(0)]}
    if model.sunspec:
        # The node finds the model on the device; the blocks count from its address.
        spec = model.sunspec
        entry["sunspec"] = {"bases": list(spec["base_addresses"]), "ids": sorted(spec["model_ids"]),
                            "length": spec["model_length"]}
    return entry


def node_config(board: dict, *, node_id: str, meters: list[tuple[str, int]], broker_host: str,
                broker_port: int = 1883, password: str | None = None, wifi_ssid: str | None = None,
                wifi_password: str | None = None, baudrate: int = 9600, parity: str = "N",
                stopbits: int = 1, interval_ms: int = 1000, timeout_ms: int = 500) -> dict:
    """The node_config.json for this board, validated by the node's own parser."""
    if board["runtime"] != "micropython":
        raise ValidationError("--board", board["id"], "is a Linux gateway: it reads meters itself (transport rtu)")
    if not valid_node_id(node_id):
        raise ValidationError("--node-id", node_id, "must be 1 to 32 lower-case letters, digits, '-' or '_'")
    ports = [p for p in board["serial"] if "uart" in p]
    if not ports:
        raise ValidationError("--board", board["id"], "has no UART for RS-485 in its board file")
    port = ports[0]
    cfg = {"node_id": node_id,
           "wifi": None if wifi_ssid is None else {"ssid": wifi_ssid, "password": wifi_password},
           "broker": {"host": broker_host, "port": broker_port, "user": node_id, "password": password},
           "uart": {"id": port["uart"], "tx": port["tx_pin"], "rx": port["rx_pin"], "de": port.get("de_pin"),
                    "baudrate": baudrate, "parity": parity, "stopbits": stopbits},
           "interval_ms": interval_ms, "timeout_ms": timeout_ms, "retries": 1,
           "watchdog_ms": board.get("defaults", {}).get("watchdog_ms", 8000), "led": None,
           "meters": [meter_entry(m, u, "--meter[%d]" % i) for i, (m, u) in enumerate(meters)]}
    try:
        parse(cfg)
    except ValidationError as exc:
        raise ValidationError("node config " + exc.field, exc.value, exc.message) from None
    return cfg


def new_password() -> str:
    return secrets.token_urlsafe(18)


def write_files(cfg: dict, workdir: Path) -> tuple[Path, Path]:
    """node_config.json and main.py in ``workdir`` (private: the file holds a password)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "node_config.json"
    config_path.touch(mode=0o600)
    config_path.write_text(json.dumps(cfg, indent=1) + "\n")
    main_path = workdir / "main.py"
    main_path.write_text(MAIN_PY)
    return config_path, main_path


def plan(board: dict, port: str, config_path: Path, main_path: Path, repo: Path = REPO) -> list[list[str]]:
    """The mpremote command lines, in order (one `mpremote connect PORT ...` call each)."""
    if not port:
        raise ValidationError("--port", port, "name the board's serial port, e.g. /dev/ttyUSB0")
    base = ["mpremote", "connect", port]
    cmds = [base + ["mip", "install", pkg] for pkg in MIP_PACKAGES]
    cmds.append(base + ["exec", MKDIRS])
    for src, dest in node_files(repo):
        cmds.append(base + ["fs", "cp", str(src), ":" + dest])
    cmds.append(base + ["fs", "cp", str(config_path), ":node_config.json"])
    cmds.append(base + ["fs", "cp", str(main_path), ":main.py"])
    cmds.append(base + ["reset"])
    return cmds
