"""The terminal view of `make run`: the status model in 80 columns, reasons and a
legend, the grid per phase with the external cap and overshoots, a summary; and the
simulated wallboxes accept every setting the edge gives them at boot."""
import logging

import pytest

from host_tools.demo_display import WIDTH, render
from host_tools.site_demo import Demo


@pytest.fixture
async def demo(tmp_path):
    d = Demo(seed=5, response_delay_s=0.2)
    await d.start(tmp_path)
    try:
        yield d
    finally:
        await d.stop()


async def test_the_view_explains_the_site_in_80_columns(demo, until, caplog):
    caplog.set_level(logging.WARNING, logger="edge.ocpp_gateway")
    svc = demo.service
    assert await until(lambda: svc.lists.version == 1)
    # Every wallbox took every setting the edge sent at boot: nothing refused, nothing warned.
    assert await until(lambda: all(st.settings for st in svc.gateway.stations.values()))
    for st in svc.gateway.stations.values():
        assert st.settings and all(v == "Accepted" for v in st.settings.values()), (st.id, st.settings)
    assert not [r for r in caplog.records if "refused settings" in r.getMessage()]

    assert await demo.arrive("CP001", "FLEET01", 40000, 16, 3)
    assert await until(lambda: svc.last is not None and svc.last.limits[("CP001", 1)][0] > 0)
    screen = render(demo)
    lines = screen.splitlines()
    assert max(len(line) for line in lines) <= WIDTH, max(lines, key=len)
    assert lines[1].split() == ["phase", "grid", "A", "building", "cars", "A", "limit", "A", "headroom"]
    assert [line.split()[0] for line in lines[2:5]] == ["L1", "L2", "L3"]
    row = next(line for line in lines if line.startswith("CP001 "))
    assert "FL***01" in row and "fleet*" in row
    assert row.rstrip().endswith(("max", "car uses less")) or "full:" in row, row
    idle = next(line for line in lines if line.startswith("CP004 "))
    assert idle.split() == ["CP004", "2", "-", "-", "0.0", "-", "1"]     # no session, no reason
    assert any(line.startswith("why: max = at its maximum") for line in lines)

    # The grid operator caps the site below what the building alone draws: the view
    # says the cap, until when, and flags the overshoot; the summary remembers it.
    await demo.curtail(50, 60)
    assert await until(lambda: svc.last.status.get("site_limit_da") == 50)
    assert await until(lambda: "OVER LIMIT" in render(demo))
    screen = render(demo)
    assert "external cap 5.0 A on each phase until" in screen
    over = [line for line in screen.splitlines() if line.endswith("OVER LIMIT")]
    assert over and all(len(line) <= WIDTH for line in over)
    row = next(line for line in screen.splitlines() if line.startswith("CP001 "))
    assert "PAUSED: ext. cap grid L" in row, row
    kinds = [(e["kind"], e.get("online"), e.get("max_da")) for e in svc.events.recent(200)]
    assert ("cloud_link", True, None) in kinds and ("external_limit", None, 50) in kinds, kinds
    summary = demo.summary(1, 1234, 0)
    assert "1 sessions recorded" in summary and "1.2 kWh" in summary
    assert "largest limit overshoot seen: L" in summary
    assert max(len(line) for line in summary.splitlines()) <= WIDTH
