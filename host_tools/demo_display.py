"""The live screen of `make run`: the status model (edge.site_status) as the same
80-column text `edge status` prints (edge.status_text), plus the demo's events."""
from __future__ import annotations

import time
from typing import Any

from edge import site_status, status_text
from edge.status_text import WIDTH  # noqa: F401 (the tests check the width against it)


def render(demo: Any) -> str:
    svc = demo.service
    st = site_status.site(svc)
    conns = site_status.connectors(svc)
    lines = ["t=%ds  %s" % (time.time() - demo.t0, status_text.headline(st))]
    lines.extend(status_text.phase_lines(st))
    lines.append("")
    lines.extend(status_text.connector_lines(conns, st["now_s"]))
    lines.append("")
    lines.extend(status_text.wrap(status_text.LEGEND))
    lines.append("")
    lines.append("events:")
    lines.extend(("  " + e)[:WIDTH] for e in demo.events[-6:])
    demo.observe(st)
    return "\n".join(line[:WIDTH] for line in lines)
