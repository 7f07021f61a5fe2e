"""The edge side as the service wires it, minus OCPP: SQLite store, lists holder,
outbox, CloudLink. Used in-process by the tests and as a subprocess (edge_proc.py)."""
from __future__ import annotations

import copy
import time
from typing import Any, Callable, Optional

from edge.cloud.mqtt_config import LinkConfig
from edge.cloud.mqtt_link import CloudLink
from edge.core.topology import Site
from edge.lists_holder import ListsHolder
from edge.store.db import open_db
from edge.store.export_jobs import ExportJobs
from edge.store.lists import ListsStore
from edge.store.outbox import Outbox
from edge.store.sessions import SessionStore

try:
    from .samples import SITE_DICT, SITE_ID, session_record
except ImportError:         # run as a script (edge_proc.py): tests/cloud is on sys.path
    from samples import SITE_DICT, SITE_ID, session_record


def fast_config(port: int, **overrides: Any) -> LinkConfig:
    cfg = LinkConfig(port=port, backoff_base_s=0.05, backoff_cap_s=0.3, drain_poll_s=0.2,
                     keepalive_s=10, stop_timeout_s=5)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


class Edge:
    def __init__(self, db_path: str, port: int, on_command: Optional[Callable] = None,
                 clock: Callable[[], float] = time.time, offline_policy: str = "deny",
                 with_sessions: bool = False, **cfg: Any) -> None:
        self.conn = open_db(db_path)
        site = copy.deepcopy(SITE_DICT)
        site["offline_unknown_tokens"] = offline_policy
        self.site = Site.from_dict(site)
        self.store = ListsStore(self.conn)
        self.holder = ListsHolder(self.site, self.store.load_book(self.site),
                                  online=lambda: self.link.online, clock=clock)
        self.outbox = Outbox(self.conn, clock=clock)
        self.commands: list = []
        self.limits: list = []
        self.sessions = SessionStore(self.conn, outbox=self.outbox, clock=clock) if with_sessions else None
        self.link = CloudLink(fast_config(port, **cfg), SITE_ID, self.holder, self.outbox,
                              self.store, on_command=on_command or self._accept,
                              on_site_limit=self.limits.append, clock=clock,
                              sessions=self.sessions,
                              export_jobs=ExportJobs(self.conn) if with_sessions else None)

    def _accept(self, command: dict) -> dict:
        self.commands.append(command)
        return {"status": "accepted", "reason": "accepted",
                "session_id": "s-demo-rs-%d" % len(self.commands)}

    def enqueue_session(self, n: int, state: str) -> str:
        rid = self.outbox.enqueue("session", "s-demo-%06d" % n, session_record(n, state))
        self.link.notify_outbox()
        return rid

    async def start(self) -> "Edge":
        await self.link.start()
        return self

    async def stop(self) -> None:
        await self.link.stop()
        self.conn.close()
