"""Provision a new site: a validated configuration file and fresh credentials.

    python -m host_tools.provision --site-id acme-hq --grid-a 63 \\
        --station garage:CP001=3x16,3x16 --station visitors:CP002=1x32@L2 \\
        --meter eastron_sdm630@tcp://192.0.2.10:502/1 \\
        --cloud-host mqtt.example.net --out /etc/edge/site.json

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

from edge import config
from edge.core.errors import ValidationError

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
        cfg["cloud"] = {"host": args.cloud_host, "port": args.cloud_port, "username": args.site_id,
                        "password": creds["mqtt"]["password"]}
    config.from_dict(cfg)
    return cfg, creds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Create a site configuration with fresh credentials")
    ap.add_argument("--site-id", required=True)
    ap.add_argument("--timezone", default="CET-1CEST,M3.5.0,M10.5.0/3", help="POSIX TZ rule")
    ap.add_argument("--grid-a", type=float, required=True, help="main fuse per phase, amperes")
    ap.add_argument("--margin-a", type=float, default=1.0)
    ap.add_argument("--station", action="append", required=True, help="GROUP:ID=CONNECTORS (repeat)")
    ap.add_argument("--meter", action="append", default=[], help="grid meter first (repeat)")
    ap.add_argument("--ocpp-port", type=int, default=9000)
    ap.add_argument("--cloud-host")
    ap.add_argument("--cloud-port", type=int, default=8883)
    ap.add_argument("--store", default="/var/lib/edge/edge.db")
    ap.add_argument("--out", type=Path, required=True, help="where to write the configuration (JSON)")
    ap.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = ap.parse_args(argv)
    if args.out.exists() and not args.force:
        print(f"error: {args.out} exists; pass --force to replace it (its credentials are then lost)", file=sys.stderr)
        return 2
    try:
        cfg, creds = build(args)
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(cfg, indent=2) + "\n")
    args.out.chmod(0o600)              # it holds the station passwords
    print(f"written {args.out} (mode 600)")
    print("\nOCPP station passwords (set as AuthorizationKey / BasicAuthPassword on each wallbox):")
    for sid, pw in creds["stations"].items():
        print(f"  {sid:<12} {pw}")
    if "mqtt" in creds:
        m = creds["mqtt"]
        print(f"\nMQTT account for the broker:  mosquitto_passwd -b /etc/mosquitto/passwd {m['username']} '{m['password']}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
