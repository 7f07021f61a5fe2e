"""The user groups' change history, read from the store (also while the service runs).

One line per change: when (UTC), by whom, the group, what changed, and the values
before and after. `--format json` gives the stored entries as they are.
Exit 2: no such store, a wrong date.
"""
from __future__ import annotations

import argparse
import json
import sys

from edge.cli._store import add_store_arguments, iso, open_store, when

HELP = "show the user groups' change history"


def configure(p: argparse.ArgumentParser) -> None:
    add_store_arguments(p)
    p.add_argument("--group", help="only this user group id")
    p.add_argument("--since", type=when, metavar="TIME", help="changes at or after, e.g. 2026-12-01")
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from edge.store import reports
    conn = open_store(args)
    try:
        entries, broken = reports.history(conn, args.group, args.since)
    finally:
        conn.close()
    if args.format == "json":
        json.dump(entries, sys.stdout, indent=1, default=repr)
        sys.stdout.write("\n")
    else:
        for e in entries:
            print(f"{iso(e.get('at_s'))}  {e.get('by')!s:<10} {e.get('group_id')!s:<16} {e.get('change')!s:<12} "
                  f"{_short(e.get('before'))} -> {_short(e.get('after'))}")
        if not entries:
            print("no changes recorded", file=sys.stderr)
    if broken:
        print(f"warning: {broken} stored entr{'y' if broken == 1 else 'ies'} could not be read", file=sys.stderr)
    return 0


def _short(value: object, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=repr) if value is not None else "-"
    return text if len(text) <= limit else text[:limit - 3] + "..."
