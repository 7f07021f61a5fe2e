"""Cloud link: draining a 10,000-session outbox backlog through a real Mosquitto.

The edge side is the production path: sessions committed in the SQLite outbox
(synchronous=FULL on a file), CloudLink batching them into ``records`` messages (QoS 1,
MQTT 5), the local Mosquitto, and the reference cloud peer decoding every batch and
acknowledging it by id; the edge then deletes the acknowledged records. A run is timed
from the link's CONNACK to the outbox being empty, so it includes the last ack. While
the backlog drains, a live session is queued every 20 ms; its delay from enqueue to
arrival at the peer shows whether the backlog starves live traffic.
Each run gets a fresh broker, database and peer. Medians and p99 (nearest rank).
"""
from __future__ import annotations

import asyncio
import logging
import math
import statistics
import tempfile
import time
from pathlib import Path

from edge.cloud.mqtt_config import LinkConfig
from edge.cloud.mqtt_link import CloudLink
from edge.core.topology import Site
from edge.lists_holder import ListsHolder
from edge.store.db import open_db, transaction
from edge.store.lists import ListsStore
from edge.store.outbox import Outbox
from host_tools.broker import Broker
from host_tools.cloud_peer import CloudPeer

SITE_ID = "bench"
TARGET_RECORDS_PER_S = 2000

SITE = {
    "site_id": SITE_ID, "timezone": "CET-1CEST,M3.5.0,M10.5.0/3",
    "grid": {"max_current_a": 63, "max_power_w": None, "safety_margin_a": 1},
    "offline_unknown_tokens": "deny",
    "charging_groups": [{"id": "garage", "name": "Garage", "max_current_a": 50, "stations": [
        {"id": "CP001", "max_current_a": 32, "connectors": [
            {"id": 1, "phases": 3, "wiring": "L1L2L3", "min_current_a": 6, "max_current_a": 16,
             "can_switch_phases": False}]}]}],
}


def session(n: int) -> dict:
    return {"session_id": "s-bench-%06d" % n, "station": "CP001", "connector": 1,
            "transaction_id": str(n), "token": "04A1B2C3D4", "payment_ref": None,
            "group_id": "g-staff", "started_s": 1_763_890_000 + n, "stopped_s": 1_763_893_600 + n,
            "meter_start_wh": 120_500 + n, "meter_stop_wh": 131_200 + n, "energy_wh": 10_700,
            "tariff": {"currency": "EUR", "energy_m_per_kwh": 350,
                       "parking": {"m_per_period": 500, "period_s": 3600, "free_s": 7200,
                                   "cap_m": 5000}, "monthly_base_m": 0},
            "cost": {"energy_m": 3745, "parking_m": 500, "total_m": 4245},
            "stop_reason": "EVDisconnected", "state": "completed", "reported_late": False}


async def _one_run(n_records: int, workdir: Path) -> dict:
    broker = Broker(workdir=str(workdir / "broker")).start()
    arrived = {}

    def on_event(site: str, kind: str, body: dict) -> None:
        if kind == "records":
            now = time.perf_counter()
            for rec in body["records"]:
                arrived.setdefault(rec["id"], now)

    peer = CloudPeer(port=broker.port, on_event=on_event).start()
    conn = open_db(workdir / "edge.db")
    try:
        outbox = Outbox(conn)
        with transaction(conn):
            for n in range(n_records):
                outbox.enqueue("session", "s-bench-%06d" % n, session(n), conn=conn)
        body_bytes = outbox.bytes_used()
        site = Site.from_dict(SITE)
        store = ListsStore(conn)
        holder = ListsHolder(site)
        link = CloudLink(LinkConfig(port=broker.port, drain_poll_s=0.5), SITE_ID, holder,
                         outbox, store, on_command=None, on_site_limit=None)
        await link.start()
        while not link.online:
            await asyncio.sleep(0.001)
        started = time.perf_counter()
        # Live sessions keep starting while the backlog drains (one every 20 ms).
        live = {}
        n = n_records
        next_live = started
        while outbox.count():
            now = time.perf_counter()
            if now >= next_live:
                rid = outbox.enqueue("session", "s-bench-%06d" % n, session(n))
                live[rid] = time.perf_counter()
                link.notify_outbox()
                n += 1
                next_live = now + 0.02
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - started
        await link.stop()
        latencies = [(arrived[rid] - t) * 1000 for rid, t in live.items() if rid in arrived]
        return {"elapsed_s": elapsed, "rate": (n_records + len(live)) / elapsed,
                "batches": peer.batches, "unique": peer.record_count(SITE_ID),
                "expected": n_records + len(live), "duplicates": peer.duplicates,
                "body_bytes": body_bytes, "live_ms": latencies}
    finally:
        peer.stop()
        conn.close()
        broker.cleanup()


STAFF = {"id": "g-staff", "name": "Staff", "kind": "drivers", "billing": "automatic",
         "tariff": {"currency": "EUR", "energy_m_per_kwh": 350, "parking": None,
                    "monthly_base_m": 0},
         "active_on": {"site": True, "charging_groups": [], "stations": [], "connectors": []},
         "prioritised": True, "state": "active", "windows": []}


def big_snapshot(version: int, n_tokens: int) -> dict:
    return {"version": version, "groups": [STAFF], "drivers": [],
            "tokens": [{"uid": "T%09d" % i, "groups": ["g-staff"], "status": "valid",
                        "expires_s": None, "driver": None, "provider": None}
                       for i in range(n_tokens)]}


async def _snapshot_run(n_tokens: int, workdir: Path) -> dict:
    """A full snapshot from the peer's publish to the swap on the edge, and the longest
    stall of the edge's asyncio loop meanwhile (what OCPP traffic would feel)."""
    broker = Broker(workdir=str(workdir / "broker")).start()
    peer = CloudPeer(port=broker.port).start()
    conn = open_db(workdir / "edge.db")
    try:
        holder = ListsHolder(Site.from_dict(SITE))
        link = CloudLink(LinkConfig(port=broker.port), SITE_ID, holder, Outbox(conn),
                         ListsStore(conn))
        await link.start()
        while not link.online:
            await asyncio.sleep(0.001)
        snap = big_snapshot(1, n_tokens)
        stall = 0.0
        started = time.perf_counter()
        publish = asyncio.ensure_future(asyncio.to_thread(peer.push_snapshot, SITE_ID, snap))
        last = time.perf_counter()
        while holder.version != 1:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            stall = max(stall, now - last)
            last = now
        elapsed = time.perf_counter() - started
        await publish
        await link.stop()
        return {"elapsed_ms": elapsed * 1000, "stall_ms": stall * 1000}
    finally:
        peer.stop()
        conn.close()
        broker.cleanup()


def _p(values, q):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def run(quick: bool = False) -> list:
    logging.getLogger("paho").setLevel(logging.WARNING)
    n_records = 2000 if quick else 10_000
    runs = 2 if quick else 7
    results = []
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-cloud-link-") as d:
            results.append(asyncio.run(_one_run(n_records, Path(d))))
    n_tokens = 10_000 if quick else 100_000
    snaps = []
    for i in range(1 if quick else 3):
        with tempfile.TemporaryDirectory(prefix="bench-cloud-link-") as d:
            snaps.append(asyncio.run(_snapshot_run(n_tokens, Path(d))))
    rates = [r["rate"] for r in results]
    times = [r["elapsed_s"] * 1000 for r in results]
    lost = sum(r["expected"] - r["unique"] for r in results)
    live_ms = [v for r in results for v in r["live_ms"]]
    case = "drain %d-session backlog via Mosquitto, peer acks (%d runs)" % (n_records, runs)
    target = ">= %d records/s" % TARGET_RECORDS_PER_S
    # The worst run of the rate is its 1st percentile; p99 of the time is the same run.
    worst_rate = _p(rates, 1)
    return [
        {"case": case, "metric": "rate median", "value": statistics.median(rates),
         "unit": "records/s", "target": target,
         "ok": statistics.median(rates) >= TARGET_RECORDS_PER_S},
        {"case": case, "metric": "rate worst (p1)", "value": worst_rate, "unit": "records/s",
         "target": target, "ok": worst_rate >= TARGET_RECORDS_PER_S},
        {"case": case, "metric": "drain time median", "value": statistics.median(times),
         "unit": "ms", "target": None, "ok": None},
        {"case": case, "metric": "drain time p99", "value": _p(times, 99), "unit": "ms",
         "target": None, "ok": None},
        {"case": case, "metric": "live session during drain: enqueue to cloud, median",
         "value": statistics.median(live_ms) if live_ms else None, "unit": "ms",
         "target": None, "ok": None},
        {"case": case, "metric": "live session during drain: enqueue to cloud, p99",
         "value": _p(live_ms, 99) if live_ms else None, "unit": "ms", "target": None,
         "ok": None},
        {"case": case, "metric": "live sessions measured (all runs)", "value": len(live_ms),
         "unit": "records", "target": None, "ok": None},
        {"case": case, "metric": "records per message (median)",
         "value": statistics.median(r["expected"] / r["batches"] for r in results),
         "unit": "records", "target": None, "ok": None},
        {"case": case, "metric": "stored body bytes per record",
         "value": results[0]["body_bytes"] / n_records, "unit": "bytes", "target": None,
         "ok": None},
        {"case": case, "metric": "records lost (all runs)", "value": lost, "unit": "records",
         "target": "0", "ok": lost == 0},
        {"case": case, "metric": "duplicates seen by the peer (all runs)",
         "value": sum(r["duplicates"] for r in results), "unit": "records", "target": None,
         "ok": None},
    ] + [
        {"case": "snapshot of %d tokens: peer publish to swap on the edge (%d runs)"
                 % (n_tokens, len(snaps)), "metric": metric,
         "value": statistics.median(r[key] for r in snaps), "unit": "ms", "target": None,
         "ok": None}
        for metric, key in (("end to end, median", "elapsed_ms"),
                            ("longest edge loop stall, median", "stall_ms"))
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
