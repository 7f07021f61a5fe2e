"""Put the edge core on a MicroPython board with mpremote.

    edge flash --board esp32-devkitc --port /dev/ttyUSB0 [--config board.json] [--dry-run]
    (python -m host_tools.flash ... in a source tree)

What a board gets: its micropython-lib dependencies (`mip install`, e.g. umqtt.simple),
`lib/edge/__init__.py` and `lib/edge/core/*.py`, and optionally a JSON config file
`edge_config.json`. Nothing but edge/core goes on a board: the adapters need CPython.
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

from edge.core.errors import ValidationError
from host_tools.boards import load_board

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
Runner = Callable[[Sequence[str]], int]

# Created before copying; mpremote's `fs mkdir` fails on an existing folder, so this
# runs as one small script on the board instead.
MKDIRS = ("import os\n"
          "for d in ('lib', 'lib/edge', 'lib/edge/core'):\n"
          "    try:\n"
          "        os.mkdir(d)\n"
          "    except OSError:\n"
          "        pass\n")


def core_files(repo: Path = REPO) -> list[Path]:
    files = [repo / "edge" / "__init__.py"]
    files += sorted(p for p in (repo / "edge" / "core").glob("*.py") if p.name != "manifest.py")
    return files


def plan(board: dict, port: str, config: Path | None = None, repo: Path = REPO) -> list[list[str]]:
    """The mpremote command lines, in order. Each is one `mpremote connect PORT ...` call."""
    if board["runtime"] != "micropython":
        raise ValidationError("board", board["id"], "is a Linux gateway (CPython): install the package there, do not flash it")
    if not port:
        raise ValidationError("--port", port, "name the board's serial port, e.g. /dev/ttyUSB0")
    base = ["mpremote", "connect", port]
    cmds = [base + ["mip", "install", pkg] for pkg in board.get("micropython_packages", [])]
    cmds.append(base + ["exec", MKDIRS])
    for f in core_files(repo):
        rel = f.relative_to(repo).as_posix()
        cmds.append(base + ["fs", "cp", str(f), ":lib/" + rel])
    if config is not None:
        cmds.append(base + ["fs", "cp", str(config), ":edge_config.json"])
    cmds.append(base + ["reset"])
    return cmds


def check_board_config(path: Path, board: dict) -> None:
    """A board config must be JSON (MicroPython has no TOML) and fit the board's limits."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValidationError("--config", str(path), "file not found") from None
    except json.JSONDecodeError as exc:
        raise ValidationError("--config", str(path), f"is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise ValidationError("--config", str(path), "must hold a JSON object")
    size = path.stat().st_size
    budget = board["heap_kb"] * 1024 // 4
    if size > budget:
        raise ValidationError("--config", f"{size} bytes",
                              f"too large for {board['id']} (keep under a quarter of the heap: {budget} bytes)")


def default_runner(cmd: Sequence[str]) -> int:
    # Run mpremote from the same environment as this tool, whatever is on PATH.
    return subprocess.run([sys.executable, "-m", "mpremote", *cmd[1:]]).returncode


def flash(board_id: str, port: str, config: Path | None, runner: Runner = default_runner,
          dry_run: bool = False, out=sys.stdout) -> int:
    board = load_board(board_id)
    if config is not None:
        check_board_config(config, board)
    cmds = plan(board, port, config)
    for i, cmd in enumerate(cmds, 1):
        shown = " ".join(c if "\n" not in c else repr(c) for c in cmd)
        print(f"[{i}/{len(cmds)}] {shown}", file=out)
        if dry_run:
            continue
        rc = runner(cmd)
        if rc != 0:
            print(f"error: step {i} failed (exit {rc}): {shown}\n"
                  f"check the cable and port, that the board runs MicroPython, and that no other "
                  f"program (a serial monitor) holds {port}", file=out)
            return rc
    return 0


def configure(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--board", required=True, help="board id, as `edge boards` lists them")
    ap.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 or /dev/ttyACM0")
    ap.add_argument("--config", type=Path, help="board configuration (JSON) to copy as edge_config.json")
    ap.add_argument("--dry-run", action="store_true", help="print the mpremote commands, run nothing")


def run(args: argparse.Namespace) -> int:
    """A wrong board, port or config raises ValidationError (exit 2); a failed step is exit 1."""
    return 0 if flash(args.board, args.port, args.config, dry_run=args.dry_run) == 0 else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Flash the edge core onto a MicroPython board")
    configure(ap)
    try:
        return run(ap.parse_args(argv))
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
