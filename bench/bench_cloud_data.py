"""Cloud data plane: snapshot/delta apply through the real downstream handler.

Cases:
- a full snapshot of 100,000 tokens: msgpack size beside the same as compact JSON, and
  the time to validate and apply it (strict decode + GroupBook build + SQLite persist
  in one transaction, synchronous=FULL on a file + swap into the lists holder), with a
  breakdown of the steps;
- a delta of 1,000 changes (500 new tokens, 300 changed, 200 removed), same pipeline;
- the outbox: batching a 10,000-record backlog into ``records`` messages (no network).
Medians and p99 (nearest rank) over repeated runs.
"""
from __future__ import annotations

import copy
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path

from edge.cloud import codec, messages
from edge.cloud.apply import APPLIED, DownstreamHandler
from edge.cloud.batching import UpstreamBatcher
from edge.core.book import GroupBook
from edge.core.topology import Site
from edge.lists_holder import ListsHolder
from edge.store.db import open_db, transaction
from edge.store.lists import FORM_ENVELOPE, ListsStore
from edge.store.outbox import Outbox

SITE_ID = "bench"
N_TOKENS = 100_000

SITE = {
    "site_id": SITE_ID, "timezone": "CET-1CEST,M3.5.0,M10.5.0/3",
    "grid": {"max_current_a": 250, "max_power_w": None, "safety_margin_a": 2},
    "offline_unknown_tokens": "deny",
    "charging_groups": [
        {"id": "cg-%d" % g, "name": "Level %d" % g, "max_current_a": 120,
         "stations": [{"id": "CP%d%02d" % (g, s), "max_current_a": 32,
                       "connectors": [{"id": 1, "phases": 3, "wiring": "L1L2L3", "min_current_a": 6,
                                       "max_current_a": 16, "can_switch_phases": False}]}
                      for s in range(10)]}
        for g in range(4)],
}

_TARIFF = {"currency": "EUR", "energy_m_per_kwh": 350,
           "parking": {"m_per_period": 500, "period_s": 3600, "free_s": 7200, "cap_m": 5000},
           "monthly_base_m": 0}


def _groups():
    out = []
    for i, (kind, billing) in enumerate([("drivers", "automatic"), ("drivers", "record_only"),
                                         ("cards", "record_only"), ("cards", "record_only"),
                                         ("adhoc", "automatic"), ("eroaming", "automatic")]):
        out.append({"id": "g-%d" % i, "name": "Group %d" % i, "kind": kind, "billing": billing,
                    "tariff": None if kind == "cards" else (
                        copy.deepcopy(_TARIFF) if kind == "drivers" else
                        {"currency": "EUR", "energy_m_per_kwh": 450, "parking": None, "monthly_base_m": 0}),
                    "active_on": {"site": i % 2 == 0, "charging_groups": ["cg-%d" % (i % 4)],
                                  "stations": ["CP%d00" % (i % 4)], "connectors": [["CP%d01" % (i % 4), 1]]},
                    "prioritised": i == 0, "state": "active",
                    "windows": [{"days": [0, 1, 2, 3, 4], "start": "07:00", "end": "19:00"}]
                    if kind == "eroaming" else []})
    return out


def _token(i, status="valid"):
    # a realistic mix: drivers' tokens, plain cards, eRoaming tokens with a provider
    r = i % 10
    if r < 5:
        return {"uid": "04%08X" % i, "groups": ["g-%d" % (r % 2)], "status": status,
                "expires_s": None if r else 1_800_000_000, "driver": "d-%d" % (i % 20_000), "provider": None}
    if r < 9:
        return {"uid": "04%08X" % i, "groups": ["g-2", "g-3"] if r == 8 else ["g-%d" % (2 + r % 2)],
                "status": status, "expires_s": None, "driver": None, "provider": None}
    return {"uid": "DE*ABC*%08X" % i, "groups": ["g-5"], "status": status, "expires_s": None,
            "driver": None, "provider": "DE-ABC"}


def make_snapshot(version, n_tokens=N_TOKENS):
    drivers = [{"id": "d-%d" % i, "name": "Driver %d" % i, "group": "g-%d" % (i % 2)} for i in range(20_000)]
    return {"version": version, "groups": _groups(), "drivers": drivers,
            "tokens": [_token(i) for i in range(n_tokens)]}


def make_delta(base, n_tokens, start):
    """1,000 changes: 500 new tokens, 300 changed (blocked), 200 removed."""
    new = [_token(n_tokens + start + i) for i in range(500)]
    changed = [_token(start * 2 + i, status="blocked") for i in range(300)]
    removed = [_token(50_000 + start + i)["uid"] for i in range(200)]
    return {"base_version": base, "version": base + 1, "tokens_upsert": new + changed,
            "tokens_remove": removed}


def _pct(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def _row(case, metric, value, unit, target=None, ok=None):
    return {"area": "cloud_data", "case": case, "metric": metric, "value": value, "unit": unit,
            "target": target, "ok": ok}


def _timing_rows(case, seconds, unit_scale, unit, target_text, target_value):
    med = statistics.median(seconds) * unit_scale
    p99 = _pct(seconds, 99) * unit_scale
    return [_row(case, "median (n=%d)" % len(seconds), round(med, 3), unit, target_text, med < target_value),
            _row(case, "p99 (n=%d)" % len(seconds), round(p99, 3), unit, target_text, p99 < target_value)]


def run(quick=False):
    rows = []
    site = Site.from_dict(SITE)
    snapshot_runs = 2 if quick else 7
    delta_runs = 5 if quick else 40
    with tempfile.TemporaryDirectory() as tmp:
        conn = open_db(Path(tmp) / "bench.db")
        store = ListsStore(conn)
        outbox = Outbox(conn)
        holder = ListsHolder(site)
        clock = time.time
        handler = DownstreamHandler(site, SITE_ID, holder, store, outbox, clock=clock)
        topic = messages.down_topic(SITE_ID, "snapshot")

        # -- sizes ---------------------------------------------------------------------------
        snap = make_snapshot(1)
        payload = codec.encode_envelope("snapshot", "c-1", SITE_ID, 0, snap)
        as_json = json.dumps({"v": 1, "type": "snapshot", "id": "c-1", "site": SITE_ID, "at_s": 0,
                              "body": snap}, separators=(",", ":")).encode()
        rows.append(_row("snapshot 100k tokens", "msgpack size", len(payload), "bytes"))
        rows.append(_row("snapshot 100k tokens", "JSON size (compact)", len(as_json), "bytes"))
        rows.append(_row("snapshot 100k tokens", "msgpack / JSON", round(len(payload) / len(as_json), 3), "ratio"))

        # -- full snapshot apply ---------------------------------------------------------------
        full, t_decode, t_build, t_persist = [], [], [], []
        for run_no in range(snapshot_runs):
            version = run_no + 1
            snap["version"] = version
            payload = codec.encode_envelope("snapshot", "c-%d" % version, SITE_ID, 0, snap)
            t0 = time.perf_counter()
            done = handler.handle(topic, payload)
            full.append(time.perf_counter() - t0)
            if done.outcome != APPLIED:
                raise RuntimeError("snapshot not applied: %r" % (done,))
            # the same steps one by one, for the breakdown
            t0 = time.perf_counter()
            env = codec.decode_envelope(payload, codec.DEFAULT_LIMITS.snapshot_bytes, SITE_ID)
            t1 = time.perf_counter()
            with codec.gc_paused():  # as the handler does
                book = GroupBook.from_snapshot(env.body, site, by="bench", now_s=0)
            t2 = time.perf_counter()
            with transaction(conn):
                store.save_snapshot(version, payload, FORM_ENVELOPE, 0)
            t3 = time.perf_counter()
            t_decode.append(t1 - t0)
            t_build.append(t2 - t1)
            t_persist.append(t3 - t2)
            del env, book
        case = "snapshot 100k tokens apply (decode+validate+build+persist+swap)"
        rows += _timing_rows(case, full, 1.0, "s", "< 2 s", 2.0)
        rows.append(_row("snapshot 100k: strict decode", "median", round(statistics.median(t_decode), 3), "s"))
        rows.append(_row("snapshot 100k: GroupBook build", "median", round(statistics.median(t_build), 3), "s"))
        rows.append(_row("snapshot 100k: SQLite persist (1 txn)", "median",
                         round(statistics.median(t_persist), 3), "s"))

        # The benchmark's own copies of the snapshot must not weigh on the delta runs
        # (the edge keeps only the book).
        del snap, payload, as_json
        gc.collect()

        # -- deltas of 1,000 changes --------------------------------------------------------------
        base = holder.version
        times = []
        for i in range(delta_runs):
            d = make_delta(base, N_TOKENS, i * 1000)
            dpayload = codec.encode_envelope("delta", "c-d%d" % i, SITE_ID, 0, d)
            t0 = time.perf_counter()
            done = handler.handle(topic, dpayload)
            times.append(time.perf_counter() - t0)
            if done.outcome != APPLIED:
                raise RuntimeError("delta not applied: %r" % (done,))
            base += 1
        rows.append(_row("delta 1,000 changes", "payload", len(dpayload), "bytes"))
        rows += _timing_rows("delta 1,000 changes apply (decode+validate+persist+swap)", times,
                             1000.0, "ms", "< 100 ms", 100.0)

        # -- outbox backlog batching ----------------------------------------------------------------
        n_records = 2000 if quick else 10_000
        body = {"session_id": "s-bench-000001", "station": "CP000", "connector": 1,
                "transaction_id": "12345", "token": "04A1B2C3D4", "payment_ref": None,
                "group_id": "g-0", "started_s": 1763890000, "stopped_s": 1763900150,
                "meter_start_wh": 120500, "meter_stop_wh": 131200, "energy_wh": 10700,
                "tariff": _TARIFF, "cost": {"energy_m": 3745, "parking_m": 500, "total_m": 4245},
                "stop_reason": "EVDisconnected", "state": "completed", "reported_late": False}
        t0 = time.perf_counter()
        with transaction(conn):
            for i in range(n_records):
                outbox.enqueue("session", "s-%d" % i, body)
        enq_s = time.perf_counter() - t0
        rows.append(_row("outbox enqueue (one transaction)", "rate", round(n_records / enq_s), "records/s"))
        t0 = time.perf_counter()
        single = 0
        for i in range(200):
            outbox.enqueue("session", "x-%d" % i, body)
            single += 1
        one_s = time.perf_counter() - t0
        rows.append(_row("outbox enqueue (own commit, synchronous=FULL)", "rate",
                         round(single / one_s), "records/s"))
        batcher = UpstreamBatcher(outbox, SITE_ID, window=10 ** 6)
        t0 = time.perf_counter()
        sent = 0
        batches = 0
        while True:
            batch = batcher.next_batch()
            if batch is None:
                break
            sent += len(batch.record_ids)
            batches += 1
            batcher.ack(batch.record_ids)
        drain_s = time.perf_counter() - t0
        rows.append(_row("outbox backlog %d records -> batches + acks (no network)" % sent, "rate",
                         round(sent / drain_s), "records/s"))
        rows.append(_row("outbox backlog %d records" % sent, "batches", batches, "messages"))
        conn.close()
    return rows


if __name__ == "__main__":
    for r in run(quick=False):
        print(r)
