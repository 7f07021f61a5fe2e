"""bench_loop's own parts (the benchmark itself runs under `make bench`)."""
import pytest

from bench.bench_loop import site_config, station_ids
from edge import config


@pytest.mark.parametrize("n, poll_s", [(100, 1.0), (100, 0.25), (2000, 1.0)])
def test_the_bench_site_is_a_valid_edge_config(n, poll_s):
    cfg = config.from_dict(site_config(n, 5020, poll_s, ":memory:"))
    assert [s.id for s in cfg.site.stations()] == station_ids(n)
    assert cfg.meters[0].interval_s == poll_s and cfg.grid_meter == "grid"
