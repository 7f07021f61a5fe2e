"""An edge process for the crash tests: CloudLink + Outbox on a SQLite file.

Usage: edge_proc.py DB PORT SESSIONS. Queues SESSIONS sessions (a started and a
completed record each) unless the database already holds queued records, prints
"READY <outbox count>", then runs until SIGTERM (clean stop) or SIGKILL.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

from edge_harness import Edge  # noqa: E402


async def main(db: str, port: int, sessions: int) -> None:
    edge = Edge(db, port)
    if edge.outbox.count() == 0:
        for n in range(sessions):
            edge.enqueue_session(n, "started")
            edge.enqueue_session(n, "completed")
    print("READY %d" % edge.outbox.count(), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await edge.start()
    await stop.wait()
    await edge.stop()
    print("STOPPED", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
