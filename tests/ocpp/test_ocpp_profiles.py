"""Profile building and dedup (pure)."""
import copy

from ocpp_testdata import SITE

from edge.core.topology import Site
from edge.ocpp_gateway.profiles import ProfileTracker, fallback_share_da, tx_profile


def test_fallback_share_is_the_tightest_circuit():
    site = Site.from_dict(SITE)
    # grid (63-1 A)/4 = 155 dA, group 50 A/4 = 125 dA, CP16 32 A/2 = 160, CP201 32 A/1
    assert fallback_share_da(site, site.station("CP16")) == 125
    d = copy.deepcopy(SITE)
    del d["charging_groups"][0]["max_current_a"]          # group limited by the grid only
    site = Site.from_dict(d)
    assert fallback_share_da(site, site.station("CP201")) == 155
    assert fallback_share_da(site, site.station("OPEN1")) == 155


def test_tracker_dedups_per_transaction():
    t = ProfileTracker()
    assert not t.unchanged(1, "tx1", 100, 3)
    t.record(1, "tx1", 100, 3, True)
    assert t.unchanged(1, "tx1", 100, 3)
    assert not t.unchanged(1, "tx1", 100, 1)          # phases changed
    assert not t.unchanged(1, "tx2", 100, 3)          # a new transaction needs its own
    t.record(2, "tx9", 60, 1, False)
    assert t.any_rejected()
    t.forget(2)
    assert not t.any_rejected() and t.last(2) is None
    t.forget()
    assert t.last(1) is None


def test_tx_profile_id_is_stable_per_connector():
    a, b = tx_profile(1, "x", 100, 3), tx_profile(1, "y", 60, 1)
    assert a["id"] == b["id"] and a["kind"] == "Relative" and a["start_s"] is None
    assert tx_profile(2, "x", 100, 3)["id"] != a["id"]
