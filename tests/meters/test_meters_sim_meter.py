"""The simulator itself: runtime values, the values callback, the command line."""

import asyncio
import os
import sys

from meter_helpers import tcp_config
from host_tools.sim_meter import SimMeter, varying_load


async def test_values_change_at_run_time(sim, poller):
    meter = await sim("janitza_umg604", values={"current_a": [10, 10, 10]})
    p = poller([tcp_config("janitza_umg604", meter.port)])
    assert (await p.poll_once("m1")).current_da == (100, 100, 100)
    meter.set_values(current_a=[32, 0, 16.5], import_wh=5000)
    r = await p.poll_once("m1")
    assert r.current_da == (320, 0, 165) and r.import_wh == 5000


async def test_values_provider_is_asked_on_every_request(sim, poller):
    load = {"a": 1.0}
    meter = await sim("eastron_sdm630", values_provider=lambda: {"current_a": [load["a"]] * 3})
    p = poller([tcp_config("eastron_sdm630", meter.port)])
    assert (await p.poll_once("m1")).current_da == (10, 10, 10)
    load["a"] = 7.5
    assert (await p.poll_once("m1")).current_da == (75, 75, 75)


def test_varying_load_swings_and_counts_energy():
    t = {"now": 0.0}
    values = varying_load([10.0, 10.0, 10.0], 230.0, period_s=60, clock=lambda: t["now"])
    assert values()["current_a"] == [10.0, 10.0, 10.0]
    t["now"] = 15.0  # a quarter period: +50 %
    v = values()
    assert v["current_a"] == [15.0, 15.0, 15.0] and v["import_wh"] > 0


def test_unknown_value_names_are_refused():
    meter = SimMeter("abb_b23")
    try:
        meter.set_values(current_ma=[1, 2, 3])
    except KeyError as exc:
        assert "current_ma" in str(exc)
    else:
        raise AssertionError("an unknown value name was accepted")


async def test_command_line_serves_a_meter(poller):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "host_tools.sim_meter", "--model", "carlo_gavazzi_em24",
        "--port", str(port), "--current", "10,20,30", "--import-wh", "123400",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert b"simulated carlo_gavazzi_em24" in line
        p = poller([tcp_config("carlo_gavazzi_em24", port)])
        r = await p.poll_once("m1")
        assert r is not None and r.current_da == (100, 200, 300) and r.import_wh == 123400
    finally:
        proc.terminate()
        await proc.wait()
