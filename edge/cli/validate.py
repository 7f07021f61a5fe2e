"""Check a site configuration file before installing it on a gateway.

    edge validate site.toml

Exit 0 and a summary when the file is good; exit 2 and the errors, one line each
naming the field and the value, when it is not: every section's first error, and
what the file names on this machine (files, the TLS key against its certificate,
the store's directory, the OCPP port, serial ports). `--probe` also reads each meter
once and connects to the cloud broker, printing what it got (exit 1 if one fails).
"""
from __future__ import annotations

import argparse

from typing import TYPE_CHECKING

from edge.cli._exit import FAILURE, Abort

if TYPE_CHECKING:
    from edge import config

HELP = "check a site file (and what it names) before installing it"


def summary(cfg: config.EdgeConfig) -> list[str]:
    site = cfg.site
    lines = [f"site {site.site_id}: grid {site.grid_max_da / 10:g} A per phase, "
             f"margin {site.margin_da / 10:g} A, unknown tokens offline: {site.offline_policy}"]
    for group in site.charging_groups:
        lines.append(f"  charging group {group.id} ({group.name}): max {group.max_da / 10:g} A")
        for st in group.stations:
            auth = "password" if cfg.ocpp.stations[st.id]["password"] else "NO PASSWORD"
            lines.append(f"    station {st.id}: max {st.max_da / 10:g} A, {len(st.connectors)} connector(s), {auth}")
    for m in cfg.meters:
        where = m.serial_port if m.transport == "rtu" else f"{m.host}:{m.port}"
        role = " (grid meter)" if m.id == cfg.grid_meter else ""
        how = f"read by meter node {m.node}" if m.source == "node" else f"over {m.transport} at {where}"
        lines.append(f"  meter {m.id}: {m.model.name} {how}, device {m.device_id}{role}")
    tls = "TLS" if cfg.ocpp.tls_cert else "no TLS"
    lines.append(f"  OCPP server on {cfg.ocpp.host}:{cfg.ocpp.port} ({tls})")
    lines.append(f"  cloud: {cfg.cloud.host}:{cfg.cloud.port}" if cfg.cloud else "  cloud: none (local only)")
    lines.append(f"  store: {cfg.store_path}")
    return lines


def warnings(cfg: config.EdgeConfig) -> list[str]:
    out = []
    for sid, st in cfg.ocpp.stations.items():
        if not st["password"]:
            out.append(f"station {sid} has no password: any device on the site network can claim to be it")
    if not cfg.meters:
        out.append("no meter: the allocation runs in fail-safe (assumed non-EV load) all the time")
    if cfg.cloud is not None and cfg.cloud.tls is None:
        out.append("the cloud link is not encrypted (no [cloud.tls])")
    return out


def configure(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("config", help="site configuration file (TOML or JSON)")
    ap.add_argument("--probe", action="store_true",
                    help="also read each meter once and connect to the cloud broker")
    ap.add_argument("--file-only", action="store_true",
                    help="check the file alone, not this machine (on a laptop, before copying it over)")
    ap.add_argument("--no-ports", action="store_true",
                    help="skip the free-port check (the service itself is running)")


def run(args: argparse.Namespace) -> int:
    from edge import config, preflight
    from edge.core.errors import ValidationError
    try:
        data = config.read_file(args.config)
    except ValidationError as exc:
        raise Abort(f"{args.config}: {exc}") from None
    cfg, errors = preflight.config_errors(data)
    if cfg is not None and not args.file_only:
        errors = preflight.environment_errors(cfg, ports=not args.no_ports)
    if errors:
        raise Abort([f"{args.config}: {e}" for e in errors])
    print("\n".join(summary(cfg)))
    for w in warnings(cfg):
        print(f"warning: {w}")
    if args.probe:
        from edge.cli._probe import probe
        if not probe(cfg):
            raise Abort("the probe failed (see above)", FAILURE)
    print("OK")
    return 0
