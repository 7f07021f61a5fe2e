"""Put the edge core on a MicroPython board with mpremote.

    edge flash --board esp32-devkitc --port /dev/ttyUSB0 [--config board.json] [--dry-run]
    (python -m host_tools.flash ... in a source tree)

What a board gets: its micropython-lib dependencies (`mip install`, e.g. umqtt.simple),
`lib/edge/__init__.py` and `lib/edge/core/*.py`, and optionally a JSON config file
`edge_config.json`. Nothing but edge/core goes on a board: the adapters need CPython.

With `--meter MODEL --unit N --node-id ID --broker HOST` the board becomes a meter node
instead (host_tools/node_flash.py): the node program, its configuration and main.py.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
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
    return execute(plan(board, port, config), port, runner, dry_run, out)


def execute(cmds: list[list[str]], port: str, runner: Runner, dry_run: bool, out) -> int:
    """Runs the steps in order with a progress line each; stops at the first failure."""
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


def flash_node(args: argparse.Namespace, runner: Runner = default_runner, out=None,
               workdir: Path | None = None) -> int:
    """A meter node: the node program and a node_config.json made from the arguments."""
    import tempfile
    out = out or sys.stdout

    from host_tools import node_flash
    board = load_board(args.board)
    if args.config is not None:
        raise ValidationError("--config", str(args.config), "a meter node's configuration is made from "
                                                            "--meter, --unit, --broker ...; leave --config out")
    units = args.unit or []
    if len(units) != len(args.meter):
        raise ValidationError("--unit", units, "give one --unit (Modbus address) per --meter")
    if args.node_id is None or args.broker is None:
        raise ValidationError("--node-id" if args.node_id is None else "--broker", None,
                              "is required with --meter")
    password, broker_port, source = node_password(args)
    generated = source is None
    cfg = node_flash.node_config(
        board, node_id=args.node_id, meters=list(zip(args.meter, units)), broker_host=args.broker,
        broker_port=broker_port, password=password, wifi_ssid=args.wifi_ssid,
        wifi_password=args.wifi_password, baudrate=args.baudrate, parity=args.parity,
        stopbits=args.stopbits, interval_ms=args.interval_ms)
    own_dir = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="edge-node-"))
    try:
        config_path, main_path = node_flash.write_files(cfg, workdir)
        rc = execute(node_flash.plan(board, args.port, config_path, main_path), args.port, runner,
                     args.dry_run, out)
    finally:
        if own_dir:     # it holds the node's password
            shutil.rmtree(workdir, ignore_errors=True)
    if rc == 0 and source is not None:
        print(f"node {args.node_id}: its broker account from {source}", file=out)
    if rc == 0 and generated:
        print(f"node {args.node_id}: give it its broker account (the ACL is edge/deploy/mosquitto/nodes.acl):\n"
              f"  mosquitto_passwd -b /etc/mosquitto/nodes.passwd {args.node_id} {password}\n"
              f"and add it to the site file: meters = [{{id = \"...\", model = \"{args.meter[0]}\", "
              f"source = \"node\", node = \"{args.node_id}\", device_id = {units[0]}}}]", file=out)
    return rc


def node_password(args: argparse.Namespace) -> tuple[str, int, Path | None]:
    """(password, broker port, the accounts file it came from or None).

    --node-password wins; else the account `edge install` made for this node
    (--accounts, default /etc/edge/node-accounts.json); with no such file, a new
    password that the installer must then add to the broker by hand (printed).
    """
    from edge import node_accounts
    from host_tools import node_flash
    accounts = None if args.node_password is not None else node_accounts.load(args.accounts)
    port = args.broker_port
    if accounts is None:
        password = args.node_password if args.node_password is not None else node_flash.new_password()
        return password, port or 1883, None
    password = node_accounts.password_of(accounts, args.node_id, args.accounts)
    return password, port or accounts.get("port") or 1883, args.accounts


def configure(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--board", required=True, help="board id, as `edge boards` lists them")
    ap.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 or /dev/ttyACM0")
    ap.add_argument("--config", type=Path, help="board configuration (JSON) to copy as edge_config.json")
    ap.add_argument("--dry-run", action="store_true", help="print the mpremote commands, run nothing")
    node = ap.add_argument_group("meter node (the board reads meters over RS-485 and publishes to the gateway)")
    node.add_argument("--meter", action="append", metavar="MODEL", help="meter model file name (repeat per meter)")
    node.add_argument("--unit", action="append", type=int, metavar="N", help="its Modbus address (repeat per meter)")
    node.add_argument("--node-id", help="the node's id: its broker user name and topic")
    node.add_argument("--broker", metavar="HOST", help="the gateway's broker (host name or address)")
    node.add_argument("--broker-port", type=int, default=None,
                      help="the broker's port for nodes (default: from --accounts, else 1883)")
    node.add_argument("--node-password", help="its broker password (default: the one edge install made, "
                                              "from --accounts; without that file a new one, printed at the end)")
    node.add_argument("--accounts", type=Path, default=Path("/etc/edge/node-accounts.json"),
                      help="the node accounts edge install wrote (default /etc/edge/node-accounts.json)")
    node.add_argument("--wifi-ssid")
    node.add_argument("--wifi-password")
    node.add_argument("--baudrate", type=int, default=9600, help="the meters' bus speed (default 9600)")
    node.add_argument("--parity", choices=("N", "E", "O"), default="N")
    node.add_argument("--stopbits", type=int, choices=(1, 2), default=1)
    node.add_argument("--interval-ms", type=int, default=1000, help="poll period (default 1000)")


def run(args: argparse.Namespace) -> int:
    """A wrong board, port or config raises ValidationError (exit 2); a failed step is exit 1."""
    if getattr(args, "meter", None):
        return 0 if flash_node(args) == 0 else 1
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
