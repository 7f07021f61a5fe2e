"""The station-wide fallback (TxDefaultProfile) is never a value a car cannot charge at."""
from ocpp_testdata import NOW
from ocpp_wallbox import connect

from edge.core.book import GroupBook
from edge.core.topology import Site
from edge.lists_holder import ListsHolder
from edge.ocpp_gateway import Gateway


def _small_grid_site(n):
    # 19 A after the margin for n one-connector stations of 6..16 A
    return Site.from_dict({
        "site_id": "t", "timezone": "UTC0",
        "grid": {"max_current_a": 20, "max_power_w": None, "safety_margin_a": 1},
        "charging_groups": [{"id": "yard", "name": "Yard", "max_current_a": 100, "stations": [
            {"id": "S%d" % i, "max_current_a": 16, "connectors": [
                {"id": 1, "phases": 1, "wiring": "L1", "min_current_a": 6,
                 "max_current_a": 16}]} for i in range(1, n + 1)]}]})


def _fallback_limit(cp):
    got = [p["profile"] for p in cp.calls("SetChargingProfile")
           if p["profile"]["charging_profile_purpose"] == "TxDefaultProfile"]
    assert len(got) == 1
    return got[0]["charging_schedule"]["charging_schedule_period"][0]["limit"]


async def test_fallback_is_the_minimum_for_the_stations_that_fit_and_0_for_the_rest(
        sessions, clock):
    site = _small_grid_site(4)       # even share 4.75 A: below every car's 6 A
    lists = ListsHolder(site, GroupBook.empty(), clock=clock)
    gw = Gateway(site, {"S%d" % i: {"password": None} for i in range(1, 5)}, lists, sessions,
                 clock=clock, response_timeout_s=10)
    port = await gw.start("127.0.0.1", 0)
    try:
        limits = {}
        for sid in ("S1", "S3", "S4"):
            c = await connect(port, sid, "1.6")
            limits[sid] = _fallback_limit(c.cp)
            await c.close()
        # three stations fit at 6 A in 19 A (configuration order), the fourth waits
        assert limits == {"S1": 6, "S3": 6, "S4": 0}
    finally:
        await gw.stop()


async def test_fallback_is_the_even_share_when_it_reaches_the_minimum(sessions, clock):
    site = _small_grid_site(2)       # 9.5 A each
    lists = ListsHolder(site, GroupBook.empty(), clock=clock)
    gw = Gateway(site, {"S1": {"password": None}, "S2": {"password": None}}, lists, sessions,
                 clock=clock, response_timeout_s=10)
    port = await gw.start("127.0.0.1", 0)
    try:
        c = await connect(port, "S2", "1.6")
        assert _fallback_limit(c.cp) == 9.5
        await c.close()
    finally:
        await gw.stop()
