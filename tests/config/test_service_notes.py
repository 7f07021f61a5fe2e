"""Allocation input problems reach the log once per incident, not once per cycle."""
import logging

from edge.service import EdgeService


def test_notes_logged_once_per_incident(caplog):
    svc = EdgeService.__new__(EdgeService)      # only the logging part, no I/O
    svc._notes = set()
    caplog.set_level(logging.INFO, logger="edge.service")
    bad = "sessions[0].drawn_da: must be 3 currents (got 'x')"
    for _ in range(5):
        svc._log_notes([bad])
    svc._log_notes([])
    svc._log_notes([bad])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if r.levelno == logging.INFO and "fixed" in r.getMessage()]
    assert len(warnings) == 2 and bad in warnings[0].getMessage()
    assert len(infos) == 1
