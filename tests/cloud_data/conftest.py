"""Fixtures of the cloud data-plane tests: a real SQLite file, the real domain core,
the real lists holder. Time is a settable clock."""
from __future__ import annotations

import pytest

from .cloud_samples import SITE_ID, Clock, Rng, make_site
from edge.cloud.apply import DownstreamHandler
from edge.lists_holder import ListsHolder
from edge.store.db import open_db
from edge.store.lists import ListsStore
from edge.store.outbox import Outbox


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def site():
    return make_site()


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "edge.db"


@pytest.fixture
def conn(db_path):
    c = open_db(db_path)
    yield c
    c.close()


@pytest.fixture
def outbox(conn, clock):
    return Outbox(conn, clock=clock, rng=Rng())


class Edge:
    """The downstream side of one edge on one database file, re-openable like a restart."""

    def __init__(self, db_path, site, clock) -> None:
        self.db_path = db_path
        self.site = site
        self.clock = clock
        self.open()

    def open(self) -> None:
        self.conn = open_db(self.db_path)
        self.outbox = Outbox(self.conn, clock=self.clock, rng=Rng())
        self.store = ListsStore(self.conn)
        book = self.store.load_book(self.site, now_s=int(self.clock()))
        self.holder = ListsHolder(self.site, book, clock=self.clock)
        self.handler = DownstreamHandler(self.site, SITE_ID, self.holder, self.store, self.outbox,
                                         clock=self.clock)

    def restart(self) -> None:
        self.conn.close()
        self.open()

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def edge(db_path, site, clock):
    e = Edge(db_path, site, clock)
    yield e
    e.close()
