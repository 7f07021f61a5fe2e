"""Session ids sort by creation time (fewer pages written, docs/retention.md)."""
import time
import uuid

from edge.store.db import open_db
from edge.store.sessions import SessionStore, time_ordered_id


def test_ids_look_like_uuids_and_later_ones_sort_after():
    first = [time_ordered_id() for _ in range(1000)]
    time.sleep(0.002)
    later = [time_ordered_id() for _ in range(1000)]
    assert len(set(first + later)) == 2000
    assert max(first) < min(later)
    u = uuid.UUID(later[0])
    assert len(later[0]) == 32 and u.version == 7 and u.variant == uuid.RFC_4122
    assert abs(int(later[0][:12], 16) / 1000 - time.time()) < 5


def test_the_store_uses_them_by_default(tmp_path):
    store = SessionStore(open_db(tmp_path / "edge.db"))
    a, _ = store.start("CP1", 1, None, "T", 0, 1_780_000_000)
    time.sleep(0.002)
    b, _ = store.start("CP1", 1, None, "T", 0, 1_780_000_100)
    assert uuid.UUID(a["session_id"]).version == 7 and a["session_id"] < b["session_id"]
