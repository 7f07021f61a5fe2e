"""Pure parts of the simulator: clocks, profile evaluation, the local list."""
import pytest

from host_tools.wallbox_sim.clock import ManualClock, SimClock, iso, parse_iso
from host_tools.wallbox_sim.local_list import Entry, ListError, LocalList, entry_from_info
from host_tools.wallbox_sim.model import Tx
from host_tools.wallbox_sim.profiles import (ProfileError, ProfileStore, parse_v16, parse_v201,
                                             period_at)
from host_tools.wallbox_sim.connector import fair_shares

DAY = 86400
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def test_sim_clock_runs_speed_times_faster_from_its_start():
    ticks = [100.0]
    clock = SimClock(speed=10, start_s=5000, real_monotonic=lambda: ticks[0])
    assert clock.now() == 5000
    ticks[0] = 102.5
    assert clock() == 5025
    with pytest.raises(ValueError, match="speed"):
        SimClock(speed=0)


async def test_manual_clock_wakes_sleepers_in_order():
    import asyncio
    clock, woke = ManualClock(0), []

    async def sleeper(name, s):
        await clock.sleep(s)
        woke.append((name, clock.now()))
    tasks = [asyncio.ensure_future(sleeper(n, s)) for n, s in (("b", 20), ("a", 10), ("c", 30))]
    await clock.advance(25)
    assert woke == [("a", 10), ("b", 20)] and clock.now() == 25 and clock.pending == 1
    await clock.advance(5)
    assert woke[-1] == ("c", 30)
    await asyncio.gather(*tasks)


def test_iso_timestamps_round_trip_and_bad_ones_name_the_text():
    assert iso(T0) == "2023-11-14T22:13:20.000Z"
    assert parse_iso("2023-11-14T22:13:20.000Z") == T0
    assert parse_iso("2023-11-14T23:13:20+01:00") == T0
    assert parse_iso("2023-11-14T22:13:20") == T0   # no zone: UTC
    with pytest.raises(ValueError, match="yesterday"):
        parse_iso("yesterday")


def _v16(purpose="TxDefaultProfile", kind="Absolute", periods=((0, 16),), **extra):
    sched = {"charging_rate_unit": extra.pop("unit", "A"),
             "charging_schedule_period": [dict(start_period=s, limit=l, **(
                 {"number_phases": p[0]} if p else {})) for s, l, *p in periods]}
    for key in ("start_schedule", "duration"):
        if key in extra:
            sched[key] = extra.pop(key)
    body = dict(charging_profile_id=extra.pop("pid", 1), stack_level=extra.pop("stack", 0),
                charging_profile_purpose=purpose, charging_profile_kind=kind,
                charging_schedule=sched, **extra)
    return body


def test_recurring_daily_profile_repeats_every_day():
    p = parse_v16(0, _v16(kind="Recurring", recurrency_kind="Daily", start_schedule=iso(T0),
                          periods=((0, 6), (3600, 16)), duration=7200), T0)
    limits = [period_at(p, T0 + d * DAY + off, None) for d in (0, 3) for off in (10, 4000, 8000)]
    assert [x.limit if x else None for x in limits] == [6, 16, None, 6, 16, None]
    assert period_at(p, T0 - 10, None) is None


def test_validity_window_and_relative_kind():
    p = parse_v16(1, _v16(kind="Relative", periods=((0, 10), (600, 20)),
                          valid_from=iso(T0 + 100), valid_to=iso(T0 + 5000)), T0)
    assert period_at(p, T0 + 50, T0) is None            # not valid yet
    assert period_at(p, T0 + 200, T0).limit == 10         # relative to the tx start
    assert period_at(p, T0 + 700, T0).limit == 20
    assert period_at(p, T0 + 700, T0 + 500).limit == 10  # a later transaction starts over
    assert period_at(p, T0 + 5000, T0) is None           # expired


def test_power_limits_convert_with_the_phases_given():
    store = ProfileStore()
    store.install(parse_v16(1, _v16(unit="W", periods=((0, 4600, 1),)), T0))
    assert store.connector_limit(1, T0, None, 3) == (20.0, 1)
    store.install(parse_v16(1, _v16(unit="W", pid=2, periods=((0, 6900),)), T0))
    assert store.connector_limit(1, T0, None, 3) == (10.0, None)   # replaced: same level


def test_store_rules_replace_clear_and_capacity():
    store = ProfileStore(max_installed=2)
    store.install(parse_v16(0, _v16(pid=1, stack=0), T0))
    store.install(parse_v16(0, _v16(pid=2, stack=1, periods=((0, 8),)), T0))
    assert store.connector_limit(1, T0, None, 3) == (8.0, None)      # higher stack wins
    with pytest.raises(ProfileError, match="no room"):
        store.install(parse_v16(0, _v16(pid=3, stack=2), T0))
    tx = Tx(1, "T", T0, 0, False, server_id="42")
    assert store.clear(stack_level=1) == 1
    store.install(parse_v16(1, _v16("TxProfile", pid=4, periods=((0, 12),),
                                    transaction_id=42), T0))
    assert store.connector_limit(1, T0, tx, 3) == (12.0, None)
    other = Tx(2, "T", T0, 0, False, server_id="43")
    assert store.connector_limit(1, T0, other, 3) == (16.0, None)    # not its transaction
    store.drop_tx_profiles(1)
    assert len(store) == 1


@pytest.mark.parametrize("body, field", [
    (_v16(purpose="Bogus"), "charging_profile_purpose"),
    (_v16(kind="Recurring"), "recurrency_kind"),
    (_v16(kind="Recurring", recurrency_kind="Daily"), "start_schedule"),
    (_v16(periods=((5, 10),)), "start_period"),
    (_v16(periods=((0, -1),)), "limit"),
    (_v16(periods=((0, 10, 4),)), "number_phases"),
    (_v16(unit="kW"), "charging_rate_unit"),
    (_v16(valid_from="soon"), "valid_from"),
    (_v16(stack=-1), "stack_level"),
    (_v16(periods=tuple((i * 60, 10) for i in range(30))), "charging_schedule_period"),
])
def test_bad_profiles_name_the_field(body, field):
    with pytest.raises(ProfileError) as err:
        parse_v16(1, body, T0, max_periods=24)
    assert field in str(err.value)


def test_v201_profile_uses_its_first_schedule():
    body = {"id": 7, "stack_level": 1, "charging_profile_purpose": "ChargingStationMaxProfile",
            "charging_profile_kind": "Absolute", "charging_schedule": [
                {"id": 1, "charging_rate_unit": "A",
                 "charging_schedule_period": [{"start_period": 0, "limit": 40}]}]}
    p = parse_v201(0, body, T0)
    assert (p.id, p.purpose, p.periods[0].limit) == (7, "max", 40.0)
    with pytest.raises(ProfileError, match="charging_schedule"):
        parse_v201(0, dict(body, charging_schedule=[]), T0)
    with pytest.raises(ProfileError, match="connector 0"):
        parse_v201(1, body, T0)


def test_fair_shares_give_nobody_more_than_it_wants():
    assert fair_shares(20, {1: 16, 2: 16}) == {1: 10, 2: 10}
    assert fair_shares(20, {1: 8, 2: 16}) == {1: 8, 2: 12}
    assert fair_shares(50, {1: 8, 2: 16}) == {1: 8, 2: 16}
    assert fair_shares(30, {1: 6, 2: 20, 3: 20}) == {1: 6, 2: 12, 3: 12}
    assert fair_shares(10, {}) == {}


def test_local_list_expiry_and_all_or_nothing_updates():
    lst = LocalList(max_entries=3, max_per_message=2)
    lst.apply(1, True, [("A", Entry("Accepted", T0 + 10)), ("B", Entry("Blocked"))])
    assert lst.lookup("A", T0) == "Accepted" and lst.lookup("A", T0 + 10) == "Expired"
    assert lst.lookup("B", T0) == "Blocked" and lst.lookup("Z", T0) is None
    with pytest.raises(ListError, match="per message"):
        lst.apply(2, False, [("C", Entry("Accepted"))] * 3)
    lst.apply(2, False, [("C", Entry("Accepted")), ("A", None)])
    with pytest.raises(ListError, match="capacity of 3"):
        lst.apply(3, False, [("D", Entry("Accepted")), ("E", Entry("Accepted"))])
    assert sorted(lst.entries) == ["B", "C"] and lst.version == 2
    with pytest.raises(ListError, match="status"):
        entry_from_info({"status": "Maybe"}, "x")
    with pytest.raises(ListError, match="expiry_date"):
        entry_from_info({"status": "Accepted", "expiry_date": "later"}, "x")


def test_connector_default_beats_station_wide_default_at_the_same_level():
    store = ProfileStore()
    store.install(parse_v16(0, _v16(pid=1, stack=2, periods=((0, 20),)), T0))
    store.install(parse_v16(2, _v16(pid=2, stack=2, periods=((0, 9),)), T0))
    store.install(parse_v16(3, _v16(pid=3, stack=1, periods=((0, 7),)), T0))
    assert store.connector_limit(1, T0, None, 3) == (20.0, None)
    assert store.connector_limit(2, T0, None, 3) == (9.0, None)
    assert store.connector_limit(3, T0, None, 3) == (20.0, None)   # higher level wins


def test_weekly_recurrence_and_station_maximum_in_watts():
    p = parse_v16(0, _v16(purpose="ChargePointMaxProfile", kind="Recurring",
                          recurrency_kind="Weekly", start_schedule=iso(T0), unit="W",
                          periods=((0, 22080), (DAY, 11040))), T0)
    store = ProfileStore()
    store.install(p)
    assert store.station_limit(T0 + 3600, 3) == 32.0
    assert store.station_limit(T0 + DAY + 1, 3) == 16.0
    assert store.station_limit(T0 + 7 * DAY + 1, 3) == 32.0          # next week again
