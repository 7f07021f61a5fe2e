"""Prometheus metrics at /metrics with the official prometheus_client.

Gauges are read at scrape time from the same status model as the API
(edge.site_status), so the two never disagree; the control-step duration is a
real Histogram fed after every step. Each server has its own registry (two
services in one process, as in tests, do not share numbers). Currents are in
amperes, the Prometheus base unit.
"""
from __future__ import annotations

from typing import Any, Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from edge import site_status

STEP_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


def _amps(da: Any) -> float | None:
    return None if da is None else da / 10.0


class SiteCollector:
    def __init__(self, service: Any) -> None:
        self.service = service

    def describe(self) -> list:
        return []    # names are only known by collecting; nothing to check them against

    def collect(self) -> Iterator[Metric]:
        svc = self.service
        st = site_status.site(svc)
        conns = site_status.connectors(svc)
        phase = {}
        for name, doc in (("grid", "Current measured at the grid meter"),
                          ("building", "Grid current minus what the cars draw (non-EV load)"),
                          ("ev", "Current the cars report drawing"),
                          ("limit", "Limit in force: the fuse, or the external cap when lower"),
                          ("headroom", "Limit minus safety margin minus measured current")):
            phase[name] = GaugeMetricFamily("edge_phase_%s_amperes" % name, doc, labels=["phase"])
        for p in st["phases"]:
            for name in phase:
                v = _amps(p[name + "_da"])
                if v is not None:
                    phase[name].add_metric([p["phase"]], v)
        yield from phase.values()
        over = GaugeMetricFamily("edge_phase_overshoot", "1 while the measured current exceeds the limit",
                                 labels=["phase"])
        for p in st["phases"]:
            over.add_metric([p["phase"]], 1.0 if p["overshoot"] else 0.0)
        yield over
        alloc = GaugeMetricFamily("edge_connector_allocated_amperes", "Limit sent to the connector",
                                  labels=["station", "connector"])
        drawn = GaugeMetricFamily("edge_connector_drawn_amperes",
                                  "Highest current the car reports on any of its phases", labels=["station", "connector"])
        paused = GaugeMetricFamily("edge_connector_paused", "1 when the allocation pauses the connector",
                                   labels=["station", "connector"])
        for c in conns:
            labels = [c["station"], str(c["connector"])]
            alloc.add_metric(labels, c["allocated_da"] / 10.0)
            if c["drawn_da"]:
                drawn.add_metric(labels, max(c["drawn_da"]) / 10.0)
            paused.add_metric(labels, 1.0 if c["reason"] and c["reason"]["paused"] else 0.0)
        yield alloc
        yield drawn
        yield paused
        sess = GaugeMetricFamily("edge_sessions", "Sessions by state", labels=["state"])
        sess.add_metric(["started"], svc.sessions.count("started"))
        sess.add_metric(["completed"], svc.sessions.count("completed"))
        yield sess
        if st["meter"] is not None:
            yield GaugeMetricFamily("edge_meter_age_seconds", "Age of the grid meter reading",
                                    value=max(0.0, float(st["meter"]["age_s"])))
        mode = GaugeMetricFamily("edge_allocation_mode", "1 for the allocation mode in force", labels=["mode"])
        for m in ("normal", "failsafe"):
            mode.add_metric([m], 1.0 if st["allocation"]["mode"] == m else 0.0)
        yield mode
        yield GaugeMetricFamily("edge_outbox_records", "Records waiting to go to the cloud",
                                value=st["outbox"]["pending"])
        yield GaugeMetricFamily("edge_storage_low", "1 while the store's disk is below the free-space"
                                " floor (new sessions refused)", value=1.0 if st["storage"]["low"] else 0.0)
        yield GaugeMetricFamily("edge_held_stops", "Session stops the store refused, held in memory",
                                value=st["storage"]["held_stops"])
        yield GaugeMetricFamily("edge_cloud_online", "1 while the cloud link is up",
                                value=1.0 if st["cloud"]["online"] else 0.0)
        calls = CounterMetricFamily("edge_ocpp_messages", "OCPP calls received from wallboxes", labels=["action"])
        errors = CounterMetricFamily("edge_ocpp_errors", "OCPP frames refused with an error", labels=["action"])
        c_tot: dict[str, int] = {}
        e_tot: dict[str, int] = {}
        for station in svc.gateway.stations.values():
            for a, n in station.calls_in.items():
                c_tot[a] = c_tot.get(a, 0) + n
            for a, n in station.errors_out.items():
                e_tot[a] = e_tot.get(a, 0) + n
        for a in sorted(c_tot):
            calls.add_metric([a], c_tot[a])
        for a in sorted(e_tot):
            errors.add_metric([a], e_tot[a])
        yield calls
        yield errors
        pace = svc.gateway.startup.stats()    # wallbox start-up work (ocpp_gateway/pacing.py)
        yield GaugeMetricFamily("edge_ocpp_startup_waiting",
                                "Pieces of wallbox start-up work waiting for their loop turn",
                                value=pace["waiting"])
        yield CounterMetricFamily("edge_ocpp_startup_pieces",
                                  "Pieces of wallbox start-up work let through",
                                  value=pace["granted"])


class Metrics:
    def __init__(self, service: Any) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(SiteCollector(service))
        self.step = Histogram("edge_control_step_seconds", "Duration of one control step (allocate and apply)",
                              buckets=STEP_BUCKETS, registry=self.registry)
        service.on_cycle(self._observe)

    def _observe(self, service: Any) -> None:
        d = getattr(service, "last_step_s", None)
        if d is not None:
            self.step.observe(d)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
