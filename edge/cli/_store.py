"""Shared by the commands that read the store beside a running service: finding it from
the site file, opening it read-only, and the --since/--until times."""
from __future__ import annotations

import argparse
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from edge.cli._exit import FAILURE, Abort


def add_store_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="the site file (it names the store), e.g. /etc/edge/site.json")
    p.add_argument("--store", help="read this store file instead of the one the site file names")


def open_store(args: argparse.Namespace) -> sqlite3.Connection:
    from edge.store.db import open_readonly
    path = args.store
    if path is None:
        from edge.cli._config import load
        path = load(args.config).store_path
    if not Path(path).is_file():
        raise Abort(f"store {path}: no such file; has the service run yet? (store.path in the site file)")
    try:
        conn = open_readonly(path)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise Abort(f"store {path}: cannot be read: {exc}", FAILURE) from None
    return conn


def when(text: str) -> int:
    """argparse type: ISO date or date-time -> UTC epoch seconds (no offset given: UTC)."""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time; use e.g. 2026-12-01 or 2026-12-01T08:00 (UTC) "
            f"or 2026-12-01T08:00+01:00") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp())


def iso(epoch_s: int | None) -> str:
    if epoch_s is None:
        return ""
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
