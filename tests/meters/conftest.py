"""Fixtures: real pymodbus servers (host_tools.sim_meter) on free loopback ports."""

import pytest

from edge.meters import MeterPoller
from host_tools.sim_meter import SimMeter


@pytest.fixture
async def sim():
    started = []

    async def make(model, **kw):
        meter = SimMeter(model, **kw)
        await meter.start()
        started.append(meter)
        return meter

    yield make
    for meter in started:
        await meter.stop()


@pytest.fixture
async def poller():
    made = []

    def make(configs, **kw):
        p = MeterPoller(configs, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        await p.stop()
