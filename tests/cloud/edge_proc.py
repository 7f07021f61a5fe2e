"""An edge process for the crash tests: CloudLink + Outbox on a SQLite file.

Usage: edge_proc.py DB PORT SESSIONS [store]. Queues SESSIONS sessions (a started and a
completed record each) unless the database already holds queued records, prints
"READY <outbox count>", then runs until SIGTERM (clean stop) or SIGKILL. With
``store`` the sessions are recorded in the session store (started at STORE_FROM_S,
one a minute) and the link answers sessions_request, as in the service.
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


STORE_FROM_S = 1_763_000_000


async def main(db: str, port: int, sessions: int, store: bool = False) -> None:
    edge = Edge(db, port, with_sessions=store)
    if store:
        if not edge.sessions.records_between(0, 2 ** 40, None, 1).items:
            for n in range(sessions):
                started = STORE_FROM_S + 60 * n
                rec, _ = edge.sessions.start("CP001", 1, "tx-%d" % n, "AA%04d" % n, 1000, started)
                edge.sessions.stop(rec["session_id"], started + 30, 1000 + n, "EVDisconnected")
    elif edge.outbox.count() == 0:
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
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:5] == ["store"]))
