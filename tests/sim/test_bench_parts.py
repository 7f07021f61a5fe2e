"""The OCPP benchmark's own parts (the benchmark itself runs under `make bench`)."""
import os

from bench.bench_ocpp import _cpu_ticks, _rss_mb, _site_dict, _snapshot, percentile, station_ids


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 99) == 99 and percentile(values, 50) == 50
    assert percentile(list(range(300, 0, -1)), 99) == 297
    assert percentile([7.5], 99) == 7.5


def test_proc_readings_of_this_process():
    ticks = _cpu_ticks(os.getpid())
    sum(i * i for i in range(300000))   # burn a little CPU
    assert _cpu_ticks(os.getpid()) >= ticks >= 0
    rss, peak = _rss_mb(os.getpid())
    assert 1 < rss <= peak


def test_bench_site_and_lists_are_valid_for_the_edge():
    from edge.core.book import GroupBook
    from edge.core.topology import Site
    site = Site.from_dict(_site_dict(500))
    assert [s.id for s in site.charging_groups[0].stations] == station_ids(500)
    book = GroupBook.from_snapshot(_snapshot(), site, "sync", 0)
    assert book.token("TOK000") is not None and book.token("TOK049") is not None


def test_burst_bench_config_is_a_valid_edge_config_naming_the_simulator_stations():
    from bench.bench_burst import edge_config, station_ids as burst_ids
    from edge import config
    from host_tools.sim_wallbox import build_specs
    cfg = config.from_dict(edge_config(500, 5020, ":memory:"))
    assert sorted(cfg.ocpp.stations) == burst_ids(500) == [s.id for s in build_specs(500)]
    assert cfg.meters[0].interval_s == 0.25 and cfg.alloc.meter_max_age_s == 1
