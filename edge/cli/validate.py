"""Check a site configuration file before installing it on a gateway.

    edge validate site.toml

Exit 0 and a summary when the file is good; exit 2 and the errors, each naming the
field and the value, when it is not.
"""
from __future__ import annotations

import argparse

from typing import TYPE_CHECKING

from edge.cli._config import load

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


def run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    print("\n".join(summary(cfg)))
    for w in warnings(cfg):
        print(f"warning: {w}")
    print("OK")
    return 0
