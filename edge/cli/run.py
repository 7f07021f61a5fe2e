"""Run the edge service with a site configuration file until SIGTERM or Ctrl-C.

Before anything starts, the file and what it names are checked: each missing or
unreadable file or directory, a taken port, a missing serial port is one line
naming it and what to do, and exit 2. The store's directory is created when only
its last level is missing. A cloud link whose TLS files are missing is not fatal:
the site keeps charging, the link logs the problem once and retries.

Exit 0 after a clean stop, 2 for bad input, 1 when starting fails otherwise.
Under systemd (Type=notify) it reports readiness and feeds the watchdog from the
control loop; once a minute an INFO line says it is alive.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sqlite3

from edge.cli._exit import FAILURE, OK, Abort

HELP = "run the edge service (also: edge CONFIG)"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
log = logging.getLogger("edge.run")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="site configuration file (TOML or JSON)")
    p.add_argument("--log-level", default="INFO", choices=LEVELS,
                   help="INFO (default): start, stop, incidents and one 'alive' line a minute")


def setup_logging(level: str) -> None:
    # journald stamps every line itself; a terminal or a file needs the time.
    fmt = "%(levelname)s %(name)s: %(message)s" if os.environ.get("JOURNAL_STREAM") \
        else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt)


def run(args: argparse.Namespace) -> int:
    from edge import preflight
    from edge.cli._config import load
    setup_logging(args.log_level)
    cfg = load(args.config)
    problems = preflight.environment_errors(cfg, create_store=True)
    fatal = [p for p in problems if not p.field.startswith("cloud.")]
    if fatal:
        raise Abort([f"{args.config}: {p}" for p in fatal])
    for p in problems:
        log.error("%s: %s; the site runs without the cloud until this is fixed", args.config, p)
    return asyncio.run(_serve(cfg))


async def _serve(cfg) -> int:
    from edge.alive import AliveLog
    from edge.sd_notify import Notifier
    from edge.service import EdgeService
    notifier = Notifier()
    service = EdgeService(cfg, freeze_gc=True)    # one service per process: freeze start-up
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
    except (OSError, sqlite3.Error) as exc:
        raise Abort(f"cannot start: {exc}", FAILURE) from None
    service.on_cycle(lambda _s: notifier.ping())
    service.on_cycle(AliveLog())
    notifier.ready(f"running: OCPP on port {service.ocpp_port}")
    await stop.wait()
    notifier.stopping()
    await service.stop()
    notifier.close()
    return OK
