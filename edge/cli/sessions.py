"""Recorded charging sessions, read from the store (also while the service runs).

    edge sessions export /etc/edge/site.json --since 2026-12-01 --format csv > december.csv

`export` writes CSV (one row per session; costs as exact integers in milli-units
of the currency, `total` also in the currency) or JSON (the records exactly as
stored and sent to the cloud). Times are UTC unless an offset is given.
Exit 2: no such store, a wrong date; 1: the store cannot be read.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys

from edge.cli._store import add_store_arguments, iso, open_store, when

HELP = "export recorded charging sessions (CSV or JSON)"

CSV_COLUMNS = ("session_id", "station", "connector", "transaction_id", "token", "payment_ref", "group_id",
               "started_utc", "stopped_utc", "started_s", "stopped_s", "meter_start_wh", "meter_stop_wh",
               "energy_wh", "currency", "energy_m", "parking_m", "total_m", "total", "stop_reason", "state",
               "reported_late")


def configure(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", metavar="ACTION", title="actions")
    ex = actions.add_parser("export", help="write sessions as CSV or JSON", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_arguments(ex)
    ex.add_argument("--format", choices=("csv", "json"), default="csv", help="csv (default) or json")
    ex.add_argument("--since", type=when, metavar="TIME", help="sessions started at or after, e.g. 2026-12-01")
    ex.add_argument("--until", type=when, metavar="TIME", help="sessions started before, e.g. 2027-01-01")
    ex.add_argument("--station", help="only this station id")
    ex.add_argument("--group", help="only this user group id")
    ex.add_argument("--out", help="write to this file instead of standard output")
    ex.set_defaults(func=export)


def export(args: argparse.Namespace) -> int:
    from edge.store import reports
    conn = open_store(args)
    try:
        records = reports.sessions(conn, args.since, args.until, args.station, args.group)
    finally:
        conn.close()
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        if args.format == "json":
            json.dump(records, out, indent=1)
            out.write("\n")
        else:
            writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(csv_row(r) for r in records)
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"{len(records)} session(s) written to {args.out}", file=sys.stderr)
    return 0


def csv_row(r: dict) -> dict:
    cost = r.get("cost") or {}
    tariff = r.get("tariff") or {}
    row = {k: r.get(k) for k in CSV_COLUMNS if k in r}
    total = cost.get("total_m")
    row.update(started_utc=iso(r["started_s"]), stopped_utc=iso(r["stopped_s"]),
               currency=tariff.get("currency", ""), energy_m=cost.get("energy_m"),
               parking_m=cost.get("parking_m"), total_m=total,
               total="" if total is None else f"{total / 1000:.3f}",
               reported_late=int(bool(r.get("reported_late"))))
    return row
