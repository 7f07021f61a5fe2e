"""`python -m edge CONFIG` (or the `edge` command): run the edge service."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from edge import compiled_core

if compiled_core.pure_requested():
    # EDGE_PURE_CORE=1: the .py core even where a compiled one is installed.
    compiled_core.use_pure_core()

from edge import config  # noqa: E402 (after the choice of core)
from edge.core.errors import ValidationError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="edge", description="EV charging site edge controller")
    ap.add_argument("config", help="site configuration file (TOML or JSON)")
    ap.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = config.load(args.config)
    except ValidationError as exc:
        print(f"error in {args.config}: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(cfg))


async def _run(cfg: config.EdgeConfig) -> int:
    from edge.service import EdgeService
    service = EdgeService(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
    except OSError as exc:
        print(f"error: cannot start: {exc}", file=sys.stderr)
        return 1
    await stop.wait()
    await service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
