"""The authorization cache: bounded, persisted, expired entries never answer."""
from edge.store.auth_cache import AuthCache
from edge.store.db import open_db


def _answer(expires_s, group="g-roam"):
    return {"accepted": True, "reason": "accepted", "group_id": group, "provider": "DE*ABC",
            "expires_s": expires_s, "tariff": None}


def test_entries_survive_a_restart_until_they_expire(tmp_path):
    conn = open_db(tmp_path / "edge.db")
    cache = AuthCache(conn, 100)
    cache.put("ROAM1", _answer(2000))
    cache.put("ROAM2", _answer(1500))
    assert cache.get("ROAM1", 1000)["group_id"] == "g-roam"
    conn.close()
    conn = open_db(tmp_path / "edge.db")
    again = AuthCache(conn, 100, now_s=1600)         # ROAM2 expired while the edge was down
    assert len(again) == 1 and again.get("ROAM1", 1999)["expires_s"] == 2000
    assert again.get("ROAM1", 2000) is None           # the expiry instant is already expired
    assert conn.execute("SELECT COUNT(*) FROM auth_cache").fetchone()[0] == 0
    conn.close()


def test_bounded_the_soonest_expiring_entries_go_first(tmp_path):
    conn = open_db(tmp_path / "edge.db")
    cache = AuthCache(conn, 3)
    for i, exp in enumerate((5000, 3000, 4000)):
        cache.put("T%d" % i, _answer(exp))
    cache.put("T3", _answer(6000))
    assert len(cache) == 3 and cache.get("T1", 0) is None
    cache.put("T0", _answer(7000, "g-other"))          # an update takes no extra room
    assert len(cache) == 3 and cache.get("T0", 0)["group_id"] == "g-other"
    assert conn.execute("SELECT COUNT(*) FROM auth_cache").fetchone()[0] == 3
    assert cache.purge(4500) == 1 and cache.get("T2", 0) is None
    conn.close()
