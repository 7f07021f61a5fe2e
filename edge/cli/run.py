"""Run the edge service with a site configuration file until SIGTERM or Ctrl-C.

Exit 0 after a clean stop, 2 when the configuration or what it names (files,
directories, ports) is wrong, 1 when the service fails while starting.
Under systemd (Type=notify) it reports readiness and feeds the watchdog.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from edge.cli._exit import FAILURE, OK

HELP = "run the edge service (also: edge CONFIG)"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


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
    from edge.cli._config import load
    setup_logging(args.log_level)
    cfg = load(args.config)
    return asyncio.run(_serve(cfg))


async def _serve(cfg) -> int:
    from edge.service import EdgeService
    service = EdgeService(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
    except OSError as exc:
        logging.getLogger("edge").error("cannot start: %s", exc)
        return FAILURE
    await stop.wait()
    await service.stop()
    return OK
