"""Run simulated wallboxes against an OCPP server.

    python -m host_tools.sim_wallbox --url ws://127.0.0.1:9000 --stations 10 --version 1.6

Library use: `from host_tools.sim_wallbox import Fleet, StationSpec, EV, Traffic`
(see docs/simulator.md).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from host_tools.wallbox_sim import (EV, ConnectorSpec, Fleet, ManualClock, SimClock,
                                    StationSpec, Traffic, iso, parse_iso)

__all__ = ["Fleet", "StationSpec", "ConnectorSpec", "EV", "Traffic", "SimClock",
           "ManualClock", "iso", "parse_iso", "build_specs", "main"]


def build_specs(count: int, version: str = "1.6", connectors: int = 1, prefix: str = "CP",
                password: str | None = None, uncontrollable: int = 0, phases: int = 3,
                max_current_a: float = 32.0, meter_interval_s: int = 10,
                response_delay_s: float = 3.0, local_list_max: int = 48) -> list[StationSpec]:
    """`count` stations named CP001...; version "mixed" alternates 1.6 and 2.0.1;
    the last `uncontrollable` stations reject charging profiles."""
    if count < 1:
        raise ValueError("stations: must be >= 1 (got %r)" % (count,))
    width = max(3, len(str(count)))
    specs = []
    for i in range(count):
        v = version if version != "mixed" else ("1.6", "2.0.1")[i % 2]
        specs.append(StationSpec(
            id="%s%0*d" % (prefix, width, i + 1), version=v, password=password,
            connectors=[ConnectorSpec(phases, max_current_a) for _ in range(connectors)],
            accept_profiles=i < count - uncontrollable, meter_interval_s=meter_interval_s,
            response_delay_s=response_delay_s, local_list_max=local_list_max))
    return specs


def _table(fleet: Fleet) -> str:
    lines = ["%-10s %2s %-13s %-12s %7s %7s %3s %9s %s" % (
        "station", "c", "state", "token", "limit", "drawn", "ph", "energy", "online")]
    rows = fleet.snapshot()
    for r in rows:
        limit = "-" if r["limit_a"] is None else "%.1fA" % r["limit_a"]
        lines.append("%-10s %2d %-13s %-12s %7s %6.1fA %3d %7dWh %s" % (
            r["station"], r["connector"], r["state"], (r["id_tag"] or "-")[:12], limit,
            r["drawn_a"], r["phases"], r["session_wh"], "yes" if r["online"] else "no"))
    power_w = sum(r["drawn_a"] * r["phases"] * 230 for r in rows)
    charging = sum(1 for r in rows if r["drawn_a"] > 0)
    offline = len({r["station"] for r in rows if not r["online"]})
    lines.append("total: %.1f kW to %d charging connectors; %d stations offline"
                 % (power_w / 1000.0, charging, offline))
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m host_tools.sim_wallbox", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="ws://127.0.0.1:9000", help="server URL; /<id> is appended")
    p.add_argument("--stations", type=int, default=10)
    p.add_argument("--version", choices=["1.6", "2.0.1", "mixed"], default="1.6")
    p.add_argument("--connectors", type=int, default=1)
    p.add_argument("--phases", type=int, choices=[1, 3], default=3, help="phases per connector")
    p.add_argument("--max-current-a", type=float, default=32.0, help="per connector")
    p.add_argument("--prefix", default="CP", help="station ids are <prefix>001 ...")
    p.add_argument("--password", default=None, help="HTTP Basic auth password (id:password)")
    p.add_argument("--uncontrollable", type=int, default=0,
                   help="how many stations reject charging profiles")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tokens", default="", help="comma-separated idTags EVs arrive with")
    p.add_argument("--mean-gap-s", type=float, default=600.0,
                   help="mean simulated seconds between two EV arrivals (whole fleet)")
    p.add_argument("--meter-interval-s", type=int, default=10)
    p.add_argument("--response-delay-s", type=float, default=3.0)
    p.add_argument("--connect-spread-s", type=float, default=None,
                   help="connect the stations evenly over N real seconds (0: all at once;"
                        " default: 1 s per 100 stations, at most 5 s)")
    p.add_argument("--lean", action="store_true",
                   help="skip the ocpp library's JSON schema checks in the simulator"
                        " (load tests: measure the server, not the simulator)")
    p.add_argument("--show-every-s", type=float, default=10.0,
                   help="print the allocation table every N real seconds (0: never)")
    p.add_argument("--duration-s", type=float, default=0.0,
                   help="stop after N real seconds (0: run until Ctrl-C or SIGTERM)")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p.parse_args(argv)


async def _run(args) -> None:
    specs = build_specs(args.stations, args.version, args.connectors, args.prefix,
                        args.password, args.uncontrollable, phases=args.phases,
                        max_current_a=args.max_current_a, meter_interval_s=args.meter_interval_s,
                        response_delay_s=args.response_delay_s)
    tokens = [t for t in args.tokens.split(",") if t]
    traffic = Traffic(tokens, mean_gap_s=args.mean_gap_s) if tokens else None
    spread = min(5.0, args.stations / 100) if args.connect_spread_s is None else args.connect_spread_s
    fleet = Fleet(args.url, specs, seed=args.seed, clock=SimClock(args.speed), traffic=traffic,
                  connect_spread_s=spread, validate_schema=not args.lean)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)   # stop cleanly: connections closed
    if args.duration_s > 0:
        loop.call_later(args.duration_s, stop.set)
    await fleet.start()
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), args.show_every_s or None)
            except asyncio.TimeoutError:
                print(_table(fleet), flush=True)
    finally:
        await fleet.stop()


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.connect_spread_s is not None and args.connect_spread_s < 0:
        print("error: --connect-spread-s: must be 0 or more (got %r)" % args.connect_spread_s,
              file=sys.stderr)
        return 2
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:
        logging.getLogger("ocpp").setLevel(logging.WARNING)
    try:
        asyncio.run(_run(args))
    except KeyboardInterrupt:
        pass
    except ValueError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
