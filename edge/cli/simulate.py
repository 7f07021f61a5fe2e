"""Simulated devices for a site file, to bench-test a gateway before the hardware is there.

Starts, on this machine:
  - each Modbus TCP meter of the site file, served by a simulated meter of the same
    model on 127.0.0.1 at the configured port (point the site file's meter host at
    127.0.0.1 for the test), with a swinging building load (--meter-current-a);
  - every station of the site file as a simulated wallbox (its connectors, phases,
    currents and password), connecting to the edge's OCPP port on 127.0.0.1; with
    --tokens, cars carrying those cards arrive (--mean-gap-s) and leave (--stay-s);
  - with --snapshot FILE, the cloud peer on the site file's broker (log in with
    --cloud-user/--cloud-password, the cloud's account), serving that snapshot.
A table of the wallboxes is printed every --show-every-s seconds. Ctrl-C or
--duration-s stops it. Exit 2: a wrong site file or option; 1: a simulator failed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import ssl
import sys

from edge.cli._exit import FAILURE, Abort

HELP = "simulated meters, wallboxes and cloud peer for a site file (bench tests)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="the site file whose devices to simulate")
    p.add_argument("--no-meters", action="store_true", help="do not simulate the meters")
    p.add_argument("--no-wallboxes", action="store_true", help="do not simulate the wallboxes")
    p.add_argument("--meter-current-a", type=float, default=10.0, help="building load per phase, amps (10)")
    p.add_argument("--version", choices=("1.6", "2.0.1", "mixed"), default="1.6", help="OCPP version (1.6)")
    p.add_argument("--tokens", default="", help="comma-separated card ids arriving cars carry (none: no cars)")
    p.add_argument("--mean-gap-s", type=float, default=600.0, help="mean seconds between arrivals (600)")
    p.add_argument("--stay-s", type=float, default=None, help="how long each car stays (random 1-8 h)")
    p.add_argument("--snapshot", help="JSON snapshot the simulated cloud serves (starts the cloud peer)")
    p.add_argument("--cloud-user", default="cloud.peer", help="the cloud's broker account (cloud.peer)")
    p.add_argument("--cloud-password", default=None, help="its password")
    p.add_argument("--show-every-s", type=float, default=10.0, help="print the wallbox table (0: never)")
    p.add_argument("--duration-s", type=float, default=0.0, help="stop after this many seconds (0: Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    from edge.cli._config import load
    cfg = load(args.config)
    if args.tokens == "" and args.stay_s is not None:
        raise Abort("--stay-s needs --tokens (the cars that arrive)")
    snapshot = None
    if args.snapshot:
        if cfg.cloud is None:
            raise Abort(f"--snapshot: {args.config} has no [cloud] section")
        try:
            with open(args.snapshot, encoding="utf-8") as f:
                snapshot = json.load(f)
        except (OSError, ValueError) as exc:
            raise Abort(f"--snapshot {args.snapshot}: cannot be read: {exc}") from None
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_simulate(cfg, args, snapshot))
    except OSError as exc:
        raise Abort(f"a simulator cannot start: {exc}", FAILURE) from None
    return 0


async def _simulate(cfg, args: argparse.Namespace, snapshot: dict | None) -> None:
    from host_tools.sim_meter import SimMeter, varying_load
    from host_tools.sim_wallbox import ConnectorSpec, Fleet, StationSpec, Traffic, _table
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration_s > 0:
        loop.call_later(args.duration_s, stop.set)
    meters, fleet, peer = [], None, None
    try:
        if not args.no_meters:
            for m in cfg.meters:
                if m.transport == "rtu":
                    print(f"meter {m.id}: RS-485 ({m.serial_port}) is not simulated", flush=True)
                    continue
                sim = SimMeter(m.model, device_id=m.device_id, port=m.port,
                               framer="rtu" if m.transport == "rtu_over_tcp" else "socket",
                               values_provider=varying_load([args.meter_current_a] * 3))
                await sim.start()
                meters.append(sim)
                where = "" if m.host in ("127.0.0.1", "localhost") else \
                    f" (the site file says {m.host}: set it to 127.0.0.1 to read this one)"
                print(f"meter {m.id}: simulated {m.model.name} on 127.0.0.1:{m.port}{where}", flush=True)
        if snapshot is not None:
            from host_tools.cloud_peer import CloudPeer
            peer = CloudPeer(cfg.cloud.host, cfg.cloud.port, args.cloud_user, args.cloud_password,
                             client_id="edge-simulate-cloud")
            peer.serve_snapshot[cfg.site.site_id] = snapshot
            await asyncio.to_thread(peer.start)
            peer.push_snapshot(cfg.site.site_id, snapshot)
            print(f"cloud peer on {cfg.cloud.host}:{cfg.cloud.port}: snapshot version "
                  f"{snapshot.get('version')} sent to site {cfg.site.site_id}", flush=True)
        if not args.no_wallboxes:
            specs = []
            for i, st in enumerate(cfg.site.stations()):
                version = args.version if args.version != "mixed" else ("1.6", "2.0.1")[i % 2]
                specs.append(StationSpec(
                    id=st.id, version=version, password=cfg.ocpp.stations[st.id]["password"],
                    connectors=[ConnectorSpec(c.phases, c.max_da / 10) for c in st.connectors]))
            tokens = [t for t in args.tokens.split(",") if t]
            traffic = None
            if tokens:
                traffic = Traffic(tokens, mean_gap_s=args.mean_gap_s)
                if args.stay_s is not None:
                    traffic.stay_s = (args.stay_s, args.stay_s)
                    traffic.leave_when_full_share = 0.0
            tls = None
            scheme = "ws"
            if cfg.ocpp.tls_cert:
                # A bench test of this gateway's own server: its certificate is not checked.
                tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                tls.check_hostname = False
                tls.verify_mode = ssl.CERT_NONE
                scheme = "wss"
            url = f"{scheme}://127.0.0.1:{cfg.ocpp.port}"
            fleet = Fleet(url, specs, traffic=traffic, ssl=tls)
            await fleet.start()
            print(f"{len(specs)} wallbox(es) connecting to {url}", flush=True)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), args.show_every_s or None)
            except asyncio.TimeoutError:
                if fleet is not None:
                    print(_table(fleet), flush=True)
        if fleet is not None:
            print(_table(fleet), flush=True)
    finally:
        if fleet is not None:
            await fleet.stop()
        for sim in meters:
            await sim.stop()
        if peer is not None:
            peer.stop()
    sys.stdout.flush()
