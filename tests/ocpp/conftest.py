import logging
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
logging.getLogger("ocpp").setLevel(logging.CRITICAL)

from edge.core.book import GroupBook  # noqa: E402
from edge.core.topology import Site  # noqa: E402
from edge.lists_holder import ListsHolder  # noqa: E402
from edge.ocpp_gateway import Gateway  # noqa: E402
from edge.store.db import open_db  # noqa: E402
from edge.store.outbox import Outbox  # noqa: E402
from edge.store.sessions import SessionStore  # noqa: E402

from ocpp_testdata import NOW, SITE, STATIONS_CFG, Clock, snapshot  # noqa: E402


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def site():
    return Site.from_dict(SITE)


@pytest.fixture
def lists(site, clock):
    return ListsHolder(site, GroupBook.from_snapshot(snapshot(), site, "sync", NOW), clock=clock)


@pytest.fixture
def db(tmp_path):
    conn = open_db(tmp_path / "edge.db")
    yield conn
    conn.close()


@pytest.fixture
def outbox(db):
    return Outbox(db)


@pytest.fixture
def sessions(db, outbox, clock):
    return SessionStore(db, outbox=outbox, clock=clock)


@pytest.fixture
def events():
    return []


@pytest.fixture
async def gateway(site, lists, sessions, clock, events):
    gw = Gateway(site, STATIONS_CFG, lists, sessions, clock=clock,
                 on_event=lambda name, body: events.append((name, body)),
                 response_timeout_s=10)
    gw.port = await gw.start("127.0.0.1", 0)
    yield gw
    await gw.stop()
