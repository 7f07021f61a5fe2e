"""A real full disk: run by test_ocpp_tiny_disk.py inside ``unshare -rm`` (a private
mount namespace) on a tmpfs of 24 MiB mounted at argv[1].

The store, the gateway with its free-space floor (reading the real free space) and a
1.6 wallbox (the ocpp library over websockets) run here; the disk is filled with a
plain file. Prints one JSON object of what was observed; the test asserts on it.
"""
from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

from ocpp.exceptions import OCPPError  # noqa: E402
from ocpp.v16 import call as call16  # noqa: E402
from ocpp_testdata import NOW, SITE, STATIONS_CFG, Clock, snapshot  # noqa: E402
from ocpp_wallbox import connect, ts, until  # noqa: E402
from test_ocpp_disk_full import TxAware16  # noqa: E402

import ocpp_wallbox  # noqa: E402
from edge.core.book import GroupBook  # noqa: E402
from edge.core.topology import Site  # noqa: E402
from edge.lists_holder import ListsHolder  # noqa: E402
from edge.ocpp_gateway import Gateway  # noqa: E402
from edge.store.db import open_db  # noqa: E402
from edge.store.outbox import Outbox  # noqa: E402
from edge.store.sessions import SessionStore  # noqa: E402
from edge.store.space import SpaceFloor  # noqa: E402

# The WAL alone may hold 4 MB before it is cut back (edge/store/db.py), so a floor
# below that does not keep room: 8 MB, as the smallest store.min_free_mb allowed.
FLOOR = 8 * 1024 * 1024


def fill(path: Path, leave: int) -> None:
    """Write a plain file until only about ``leave`` bytes are free."""
    with open(path, "ab") as f:
        while True:
            free = os.statvfs(path.parent).f_bavail * os.statvfs(path.parent).f_frsize
            if free <= leave:
                return
            try:
                f.write(b"\0" * min(1024 * 1024, free - leave))
                f.flush()
                os.fsync(f.fileno())
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return


async def main(mnt: Path) -> dict:
    out: dict = {}
    ocpp_wallbox.Wallbox16 = TxAware16
    clock = Clock()
    site = Site.from_dict(SITE)
    lists = ListsHolder(site, GroupBook.from_snapshot(snapshot(), site, "sync", NOW), clock=clock)
    db = open_db(mnt / "edge.db")
    outbox = Outbox(db, clock=clock)
    sessions = SessionStore(db, outbox=outbox, clock=clock)
    space = SpaceFloor(str(mnt / "edge.db"), FLOOR, clock=clock, every_s=0)  # real statvfs
    gw = Gateway(site, STATIONS_CFG, lists, sessions, clock=clock, space=space,
                 response_timeout_s=10, sample_flush_s=0.05)
    port = await gw.start("127.0.0.1", 0)
    c = await connect(port, "CP16", "1.6", "secret-16")
    c.cp.running = set()
    filler = mnt / "filler"
    try:
        r1 = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1",
                                                     meter_start=1000, timestamp=ts(NOW)))
        c.cp.running.add(r1.transaction_id)
        out["first_start"] = r1.id_tag_info["status"]
        # below the floor, not full: a new start is refused, the running session goes on
        fill(filler, FLOOR // 2)
        r2 = await c.cp.call(call16.StartTransaction(connector_id=2, id_tag="STAFF2",
                                                     meter_start=0, timestamp=ts(NOW + 60)))
        out["below_floor_start"] = r2.id_tag_info["status"]
        out["below_floor_refused"] = sessions.by_transaction("CP16", r2.transaction_id)["refused"]
        await c.cp.call(call16.MeterValues(connector_id=1, transaction_id=r1.transaction_id,
                                           meter_value=[{"timestamp": ts(NOW + 300),
                                                         "sampled_value": [{"value": "3000"}]}]))
        # now truly full: the stop cannot be stored
        fill(filler, 0)
        out["free_when_full"] = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        try:
            await c.cp.call(call16.StopTransaction(
                meter_stop=8000, timestamp=ts(NOW + 1200), transaction_id=r1.transaction_id,
                reason="EVDisconnected"), suppress=False)
            out["stop_when_full"] = "acknowledged"
        except OCPPError as exc:
            out["stop_when_full"] = exc.code
        c.cp.running.discard(r1.transaction_id)
        out["limits_when_full"] = {"%s/%d" % k: v for k, v in
                                   (await gw.apply_limits({("CP16", 1): (100, 3)})).items()}
        out["controllable"] = gw.stations["CP16"].controllable
        # space comes back: the held stop is written with its real end, the alarm clears
        filler.unlink()
        await until(lambda: sessions.by_transaction("CP16", r1.transaction_id)["state"]
                    == "completed")
        rec = sessions.by_transaction("CP16", r1.transaction_id)
        out["completed"] = {k: rec[k] for k in ("stop_reason", "stopped_s", "meter_stop_wh",
                                                "energy_wh")}
        r3 = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF2",
                                                     meter_start=8000, timestamp=ts(NOW + 1800)))
        out["start_after"] = r3.id_tag_info["status"]
        out["floor"] = {k: space.state()[k] for k in ("low", "incidents")}
    finally:
        await c.close()
        await gw.stop()
        db.close()
    return out


if __name__ == "__main__":
    logging.basicConfig(level=logging.CRITICAL)
    result = asyncio.run(main(Path(sys.argv[1])))
    print("RESULT " + json.dumps(result), flush=True)
