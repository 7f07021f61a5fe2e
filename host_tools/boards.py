"""Board data files (boards/*.json): load, validate, list.

A board file holds hardware facts and defaults only; what the edge runs on it is
decided from `runtime` and `runs`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge.core.errors import ValidationError

# Shipped inside the package (edge/boards/), so an installed `edge flash` finds them.
BOARDS_DIR = Path(__file__).resolve().parent.parent / "edge" / "boards"
RUNTIMES = ("cpython", "micropython")
CAPABILITIES = ("core", "ocpp_server", "meters_tcp", "meters_rtu", "cloud_mqtt", "sqlite_store", "node_mqtt")
# What backs each capability a board claims, per runtime: the code that does it and the
# tests that prove it (tests/host_tools/test_boards.py checks that both exist).
# meters_rtu on MicroPython is the meter node's own RTU master; node_mqtt is the node
# publishing its meters to the gateway's broker (docs/meters.md, "Meter nodes").
BACKED_BY = {
    ("cpython", "core"): ("edge/core", "tests/core"),
    ("cpython", "ocpp_server"): ("edge/ocpp_gateway", "tests/ocpp"),
    ("cpython", "meters_tcp"): ("edge/meters/transport.py", "tests/meters"),
    ("cpython", "meters_rtu"): ("edge/meters/transport.py", "tests/meters/test_meters_poller.py"),
    ("cpython", "cloud_mqtt"): ("edge/cloud", "tests/cloud"),
    ("cpython", "sqlite_store"): ("edge/store", "tests/cloud_data"),
    ("micropython", "core"): ("edge/core", "tests/core"),
    ("micropython", "meters_rtu"): ("edge/node/rtu.py", "tests/node/test_node_replay.py"),
    ("micropython", "node_mqtt"): ("edge/node/app.py", "tests/meter_node/test_node_end_to_end.py"),
}
REQUIRED = {"id": str, "name": str, "runtime": str, "cpu": str, "ram_kb": int,
            "serial": list, "network": list, "runs": list, "defaults": dict, "sources": list}


def _check_int(field: str, value: Any, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(field, value, f"must be a whole number >= {minimum}")


def validate_board(data: Any, where: str = "board") -> dict:
    if not isinstance(data, dict):
        raise ValidationError(where, type(data).__name__, "must be a JSON object")
    for key, typ in REQUIRED.items():
        if key not in data:
            raise ValidationError(f"{where}.{key}", None, "is required")
        if not isinstance(data[key], typ) or isinstance(data[key], bool):
            raise ValidationError(f"{where}.{key}", data[key], f"must be a {typ.__name__}")
    if data["runtime"] not in RUNTIMES:
        raise ValidationError(f"{where}.runtime", data["runtime"], f"must be one of {', '.join(RUNTIMES)}")
    _check_int(f"{where}.ram_kb", data["ram_kb"], 1)
    for i, cap in enumerate(data["runs"]):
        if cap not in CAPABILITIES:
            raise ValidationError(f"{where}.runs[{i}]", cap, f"unknown capability; known: {', '.join(CAPABILITIES)}")
    if "core" not in data["runs"]:
        raise ValidationError(f"{where}.runs", data["runs"], "every board runs the core")
    if data["runtime"] == "micropython":
        for key in ("micropython_port", "heap_kb", "flash_kb"):
            if key not in data:
                raise ValidationError(f"{where}.{key}", None, "is required for a MicroPython board")
        _check_int(f"{where}.heap_kb", data["heap_kb"], 16)
        _check_int(f"{where}.flash_kb", data["flash_kb"], 256)
        for cap in ("ocpp_server", "sqlite_store", "meters_tcp", "cloud_mqtt"):
            if cap in data["runs"]:
                raise ValidationError(f"{where}.runs", cap, "needs CPython adapters; a MicroPython board cannot run it")
    for i, port in enumerate(data["serial"]):
        f = f"{where}.serial[{i}]"
        if not isinstance(port, dict) or "name" not in port:
            raise ValidationError(f, port, "must be an object with a name")
        if data["runtime"] == "micropython":
            for key in ("uart", "tx_pin", "rx_pin"):
                if key not in port:
                    raise ValidationError(f"{f}.{key}", None, "is required on a MicroPython board")
                _check_int(f"{f}.{key}", port[key])
        elif "device" not in port:
            raise ValidationError(f"{f}.device", None, "is required on a Linux board (e.g. /dev/ttyUSB0)")
    for key, value in data["defaults"].items():
        if key.endswith(("_s", "_kb")) or key.startswith("max_"):
            _check_int(f"{where}.defaults.{key}", value, 1)
    if not data["sources"]:
        raise ValidationError(f"{where}.sources", data["sources"], "name the documents the facts come from")
    return data


def load_board(board_id: str, boards_dir: Path = BOARDS_DIR) -> dict:
    path = boards_dir / f"{board_id}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in boards_dir.glob("*.json")))
        raise ValidationError("board", board_id, f"no such board file; known boards: {known}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValidationError(path.name, f"line {exc.lineno}", f"is not valid JSON: {exc.msg}") from None
    board = validate_board(data, path.stem)
    if board["id"] != path.stem:
        raise ValidationError(f"{path.stem}.id", board["id"], "must equal the file name")
    return board


def all_boards(boards_dir: Path = BOARDS_DIR) -> list[dict]:
    return [load_board(p.stem, boards_dir) for p in sorted(boards_dir.glob("*.json"))]


def configure(ap: argparse.ArgumentParser) -> None:
    """`edge boards` takes no arguments yet."""


def run(args: argparse.Namespace) -> int:
    """Prints one line per board; a broken board file raises ValidationError (exit 2)."""
    for b in all_boards():
        print(f"{b['id']:<18} {b['runtime']:<12} {b['name']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="List and check the supported boards")
    configure(ap)
    try:
        return run(ap.parse_args(argv))
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
