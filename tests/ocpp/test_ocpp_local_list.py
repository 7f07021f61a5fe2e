"""Differential local list planning (pure)."""
from edge.ocpp_gateway.local_list import ListState, apply, plan


def _w(*uids):
    return [(u, "valid", None, "g") for u in uids]


def test_first_push_is_full_then_nothing():
    st = ListState()
    ups = plan(st, _w("A", "B"), chunk=10, wallbox_version=0)
    assert ups == [{"version": 1, "type": "Full",
                    "entries": [("A", "valid", None, "g"), ("B", "valid", None, "g")]}]
    apply(st, ups[0])
    assert plan(st, _w("A", "B"), 10, 1) == []


def test_differential_removals_first_and_chunked():
    st = ListState()
    apply(st, plan(st, _w("A", "B", "C"), 10, 0)[0])
    ups = plan(st, _w("A", "D", "E"), chunk=2, wallbox_version=1)
    assert [u["type"] for u in ups] == ["Differential", "Differential"]
    assert [u["version"] for u in ups] == [2, 3]
    flat = [e for u in ups for e in u["entries"]]
    assert flat[:2] == [("B", None, None, None), ("C", None, None, None)]
    assert {e[0] for e in flat[2:]} == {"D", "E"}
    for u in ups:
        apply(st, u)
    assert set(st.entries) == {"A", "D", "E"} and st.version == 3


def test_changed_expiry_is_sent_again():
    st = ListState()
    apply(st, plan(st, _w("A"), 10, 0)[0])
    ups = plan(st, [("A", "valid", 1800000000, "g")], 10, 1)
    assert ups[0]["entries"] == [("A", "valid", 1800000000, "g")]


def test_unknown_wallbox_version_forces_full():
    st = ListState()
    apply(st, plan(st, _w("A"), 10, 0)[0])
    # the wallbox was reset (or another server wrote to it): version differs
    ups = plan(st, _w("A"), 10, wallbox_version=7)
    assert ups[0]["type"] == "Full" and ups[0]["version"] == 8


def test_full_larger_than_chunk_continues_differentially():
    st = ListState()
    ups = plan(st, _w("A", "B", "C"), chunk=2, wallbox_version=0)
    assert [(u["type"], len(u["entries"])) for u in ups] == [("Full", 2), ("Differential", 1)]


def test_byte_budget_splits_messages():
    st = ListState()
    wanted = [("U%02d" % i, "valid", None, "g") for i in range(10)]
    ups = plan(st, wanted, chunk=100, wallbox_version=0, size_of=lambda e: 100,
               max_bytes=200 + 350)       # 3 entries of 100 bytes fit after the overhead
    assert [len(u["entries"]) for u in ups] == [3, 3, 3, 1]
    assert [u["type"] for u in ups] == ["Full", "Differential", "Differential", "Differential"]
