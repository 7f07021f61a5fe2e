"""Create a site file: topology, meters and fresh credentials, checked before it is written.

    edge init --site-id acme-hq --grid-a 63 \\
        --station garage:CP001=3x16,3x16 --station visitors:CP002=1x32@L2 \\
        --meter eastron_sdm630@tcp://192.0.2.10:502/1 \\
        --cloud-host mqtt.example.net --out site.json

Connectors: PHASESxMAX_A, optionally @WIRING (L1L2L3, L2L3L1, L3L1L2; L1/L2/L3 for one
phase). Meters: MODEL@tcp://HOST:PORT/UNIT, MODEL@rtutcp://HOST:PORT/UNIT or
MODEL@rtu:/dev/ttyUSB0:BAUD:PARITY/UNIT. The file is checked with the same rules the
service uses before it is written; station passwords (OCPP security profile 1) and the
site's MQTT password are generated and printed once, for commissioning.
"""
from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
from pathlib import Path
from typing import Callable

from edge.cli._exit import Abort
from edge.core.errors import ValidationError

HELP = "create a site file with fresh station passwords and broker credentials"
# The broker's password file, as edge/deploy/mosquitto/README.md and `edge install --broker` name it.
MOSQUITTO_PASSWD = "/etc/mosquitto/evc.passwd"

_CONN = re.compile(r"^(?P<phases>[13])x(?P<max>\d+(?:\.\d+)?)(?:@(?P<wiring>L[123](?:L[123]L[123])?))?$")
_STATION = re.compile(r"^(?:(?P<group>[A-Za-z0-9_-]+):)?(?P<id>[A-Za-z0-9_.-]+)=(?P<conns>.+)$")
_TCP = re.compile(r"^(?P<model>[a-z0-9_]+)@(?P<scheme>tcp|rtutcp)://(?P<host>[^:/]+):(?P<port>\d+)/(?P<unit>\d+)$")
_RTU = re.compile(r"^(?P<model>[a-z0-9_]+)@rtu:(?P<dev>/[^:]+):(?P<baud>\d+):(?P<parity>[NEO])/(?P<unit>\d+)$")


def parse_station(text: str, index: int) -> tuple[str, dict]:
    field = f"--station[{index}]"
    m = _STATION.match(text)
    if not m:
        raise ValidationError(field, text, "must look like GROUP:ID=3x16,1x32@L2")
    connectors = []
    for n, spec in enumerate(m["conns"].split(","), 1):
        c = _CONN.match(spec.strip())
        if not c:
            raise ValidationError(f"{field}.connector[{n}]", spec, "must look like 3x16 or 1x32@L2")
        phases = int(c["phases"])
        wiring = c["wiring"] or ("L1L2L3" if phases == 3 else "L1")
        max_a = float(c["max"])
        connectors.append({"id": n, "phases": phases, "wiring": wiring, "min_current_a": 6,
                           "max_current_a": int(max_a) if max_a.is_integer() else max_a})
    return m["group"] or "main", {"id": m["id"], "connectors": connectors}


def parse_meter(text: str, index: int) -> dict:
    field = f"--meter[{index}]"
    meter_id = "grid" if index == 0 else f"meter{index + 1}"
    m = _TCP.match(text)
    if m:
        return {"id": meter_id, "model": m["model"], "transport": "tcp" if m["scheme"] == "tcp" else "rtu_over_tcp",
                "host": m["host"], "port": int(m["port"]), "device_id": int(m["unit"])}
    m = _RTU.match(text)
    if m:
        return {"id": meter_id, "model": m["model"], "transport": "rtu", "serial_port": m["dev"],
                "baudrate": int(m["baud"]), "parity": m["parity"], "device_id": int(m["unit"])}
    raise ValidationError(field, text, "must look like MODEL@tcp://HOST:PORT/UNIT or MODEL@rtu:/dev/ttyUSB0:9600:E/UNIT")


def build(args: argparse.Namespace, token: Callable[[int], str] = secrets.token_urlsafe) -> tuple[dict, dict]:
    """(config dict, credentials) — the config is validated here, all or nothing."""
    groups: dict[str, dict] = {}
    passwords: dict[str, str] = {}
    for i, text in enumerate(args.station):
        group, station = parse_station(text, i)
        if station["id"] in passwords:
            raise ValidationError(f"--station[{i}]", station["id"], "names a station twice")
        groups.setdefault(group, {"id": group, "name": group, "stations": []})["stations"].append(station)
        passwords[station["id"]] = token(18)          # 24 characters: within OCPP's 16..40
    cfg = {
        "site": {"site_id": args.site_id, "timezone": args.timezone, "offline_unknown_tokens": "deny",
                 "grid": {"max_current_a": args.grid_a, "safety_margin_a": args.margin_a},
                 "charging_groups": list(groups.values())},
        "meters": [parse_meter(t, i) for i, t in enumerate(args.meter)],
        "ocpp": {"host": "0.0.0.0", "port": args.ocpp_port,
                 "stations": {sid: {"password": pw} for sid, pw in passwords.items()}},
        "store": {"path": args.store},
    }
    creds = {"stations": passwords}
    if args.cloud_host:
        creds["mqtt"] = {"username": args.site_id, "password": token(24)}
        port = args.cloud_port or (1883 if args.cloud_plain else 8883)
        cfg["cloud"] = {"host": args.cloud_host, "port": port, "username": args.site_id,
                        "password": creds["mqtt"]["password"]}
        if not args.cloud_plain:
            cfg["cloud"]["tls"] = {}           # the system's trusted CAs check the broker
    from edge import config
    config.from_dict(cfg)
    return cfg, creds


def apply_board(args: argparse.Namespace) -> dict | None:
    """A gateway board's facts: it must run the service (CPython); its defaults fill gaps."""
    if args.store is None:
        args.store = "/var/lib/edge/edge.db"
    if not args.board:
        return None
    from host_tools.boards import load_board
    board = load_board(args.board)
    if board["runtime"] != "cpython":
        raise ValidationError("--board", args.board, "is a MicroPython board: it runs the core only "
                                                     "(`edge flash`), not a site; choose a Linux gateway")
    args.store = board["defaults"].get("store_path", args.store) if args.store == "/var/lib/edge/edge.db" \
        else args.store
    return board


def ask(args: argparse.Namespace, read: Callable[[str], str] = input) -> None:
    """Questions for what the flags left out, one answer per line (blank: done/none)."""
    def answer(question: str) -> str:
        try:
            return read(question).strip()
        except EOFError:
            return ""
    if not args.site_id:
        args.site_id = answer("site id (letters, digits, - and _): ")
    if not args.grid_a:
        text = answer("main fuse per phase, amperes: ")
        try:
            args.grid_a = float(text)
        except ValueError:
            raise ValidationError("grid fuse", text, "must be a number of amperes") from None
    if not args.board:
        args.board = answer("board (`edge boards`; blank: none): ") or None
    if not args.station:
        args.station = _list(answer, "wallbox {n} as [GROUP:]ID=3x16,1x32@L2 (blank: done): ")
    if not args.meter:
        args.meter = _list(answer, "meter {n} as MODEL@tcp://HOST:PORT/UNIT, grid meter first (blank: done): ")
    if not args.cloud_host:
        args.cloud_host = answer("cloud MQTT broker host (blank: no cloud): ") or None


def _list(answer: Callable[[str], str], question: str) -> list[str]:
    out: list[str] = []
    while text := answer(question.format(n=len(out) + 1)):
        out.append(text)
    return out


def configure(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--site-id", help="the site's id: letters, digits, - and _")
    ap.add_argument("--timezone", default="CET-1CEST,M3.5.0,M10.5.0/3", help="POSIX TZ rule of the site")
    ap.add_argument("--grid-a", type=float, help="main fuse per phase, amperes")
    ap.add_argument("--margin-a", type=float, default=1.0, help="kept free below the fuse, amperes")
    ap.add_argument("--station", action="append", default=[], metavar="[GROUP:]ID=CONNECTORS",
                    help="a wallbox (repeat): connectors PHASESxMAX_A[@WIRING] separated by commas, "
                         "e.g. garage:CP001=3x16,3x16 or visitors:CP002=1x32@L2")
    ap.add_argument("--meter", action="append", default=[], metavar="MODEL@ADDRESS",
                    help="a meter, grid meter first (repeat): MODEL@tcp://HOST:PORT/UNIT, "
                         "MODEL@rtutcp://HOST:PORT/UNIT or MODEL@rtu:/dev/ttyUSB0:BAUD:PARITY/UNIT")
    ap.add_argument("--ocpp-port", type=int, default=9000, help="port the wallboxes connect to")
    ap.add_argument("--cloud-host", help="the cloud's MQTT broker (none: the site runs without a cloud)")
    ap.add_argument("--cloud-port", type=int, default=None, help="default 8883 (TLS), 1883 with --cloud-plain")
    ap.add_argument("--cloud-plain", action="store_true", help="no TLS to the broker (a broker on the site network)")
    ap.add_argument("--board", help="the gateway's board (`edge boards`): checked, and its defaults used")
    ap.add_argument("--store", default=None, help="the SQLite store (default: the board's, /var/lib/edge/edge.db)")
    ap.add_argument("--interactive", action="store_true",
                    help="ask for what the flags leave out (the default on a terminal when --site-id, "
                         "--grid-a or --station is missing)")
    ap.add_argument("--out", type=Path, default=Path("site.json"), help="where to write the site file (JSON)")
    ap.add_argument("--force", action="store_true", help="overwrite an existing file (its credentials are lost)")


REQUIRED = (("site_id", "--site-id"), ("grid_a", "--grid-a"), ("station", "--station"))


def run(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.force:
        raise Abort(f"{args.out} exists; pass --force to replace it (its credentials are then lost)")
    missing = [flag for name, flag in REQUIRED if not getattr(args, name)]
    if missing and (args.interactive or sys.stdin.isatty()):
        ask(args)
    elif missing:
        raise Abort(f"missing {', '.join(missing)} (or run `edge init` on a terminal to be asked)")
    if not args.station:
        raise Abort("a site needs at least one wallbox (--station)")
    board = apply_board(args)
    cfg, creds = build(args)
    if board is not None and len(creds["stations"]) > board["defaults"].get("max_stations", 10**6):
        raise Abort(f"--board {board['id']}: at most {board['defaults']['max_stations']} stations "
                    f"(got {len(creds['stations'])})")
    try:
        args.out.write_text(json.dumps(cfg, indent=2) + "\n")
        args.out.chmod(0o600)              # it holds the station passwords
    except OSError as exc:
        raise Abort(f"cannot write {args.out}: {exc.strerror}; choose another --out") from None
    print(f"written {args.out} (mode 600)")
    print("\nOCPP station passwords (set as AuthorizationKey / BasicAuthPassword on each wallbox):")
    for sid, pw in creds["stations"].items():
        print(f"  {sid:<12} {pw}")
    if "mqtt" in creds:
        m = creds["mqtt"]
        print(f"\nMQTT account for the broker:  mosquitto_passwd -b {MOSQUITTO_PASSWD} {m['username']} '{m['password']}'")
    return 0
