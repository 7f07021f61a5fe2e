"""Subprocess for test_crash: writes outbox records or applies lists until killed.

Prints one line per committed step (after the call returned), flushed, so the parent
knows what was acknowledged as durable when it sends SIGKILL.
"""
from __future__ import annotations

import sys

from edge.cloud import messages
from edge.cloud.apply import APPLIED, DownstreamHandler
from edge.lists_holder import ListsHolder
from edge.store.db import open_db
from edge.store.lists import ListsStore
from edge.store.outbox import Outbox

from tests.cloud_data.cloud_samples import SITE_ID, delta, make_site, snapshot


def write_records(path: str) -> None:
    box = Outbox(open_db(path))
    n = 0
    while True:
        rid = box.enqueue("session", "s-%d" % (n % 7), {"n": n, "pad": "x" * 200})
        print(rid, flush=True)
        n += 1


def apply_lists(path: str) -> None:
    site = make_site()
    conn = open_db(path)
    store = ListsStore(conn)
    holder = ListsHolder(site, store.load_book(site))
    handler = DownstreamHandler(site, SITE_ID, holder, store, Outbox(conn))
    topic = messages.down_topic(SITE_ID, "snapshot")
    version = holder.version
    while True:
        if version % 5 == 0:
            msg_type, body = "snapshot", snapshot(version + 1, 3000)
        else:
            msg_type, body = "delta", delta(version, version + 1, add=[10_000 + version])
        t, p = messages.build(SITE_ID, msg_type, body, "c-%d" % version, 1, validate=False)
        done = handler.handle(t, p)
        if done.outcome != APPLIED:
            print("ERROR", done, flush=True)
            return
        version += 1
        print(version, flush=True)


if __name__ == "__main__":
    {"records": write_records, "lists": apply_lists}[sys.argv[1]](sys.argv[2])
