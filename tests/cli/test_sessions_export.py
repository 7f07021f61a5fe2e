"""`edge sessions export` and `edge history` read the store beside a writer, with filters,
as CSV (the csv module) or JSON, and the same energy and cost as the store holds."""
from __future__ import annotations

import csv
import io
import json

from edge.cli import main as edge_main
from edge.core.book import GroupBook
from edge.core.topology import Site
from edge.store.db import open_db, transaction
from edge.store.lists import ListsStore
from edge.store.sessions import SessionStore
from tests.cloud.samples import SITE_DICT, snapshot

TARIFF = {"currency": "EUR", "energy_m_per_kwh": 350, "parking": None, "monthly_base_m": 0}
DAY = 1_764_547_200            # 2025-12-01T00:00:00Z


def fill(path):
    conn = open_db(path)
    store = SessionStore(conn)
    made = []
    for n, (station, group, start) in enumerate([("CP001", "g-staff", DAY + 3600), ("CP002", "g-guest", DAY + 7200),
                                                 ("CP001", "g-guest", DAY + 86400 + 60)]):
        rec, _ = store.start(station, 1, n + 1, "TOKEN%d" % n, 1000, start, group_id=group, tariff=TARIFF)
        energy = 7400 + n
        made.append(store.stop(rec["session_id"], start + 3600, 1000 + energy, "EVDisconnected",
                               cost={"energy_m": energy * 350 // 1000, "parking_m": 0,
                                     "total_m": energy * 350 // 1000}))
    open_one, _ = store.start("CP002", 1, 99, "OPEN", 5, DAY + 90000, group_id="g-staff", tariff=TARIFF)
    return conn, made + [open_one]


def export(capsys, *args):
    capsys.readouterr()
    assert edge_main(["sessions", "export", "unused.toml", *args]) == 0
    return capsys.readouterr().out


def test_csv_and_json_match_the_store(tmp_path, capsys):
    db = tmp_path / "edge.db"
    conn, made = fill(db)
    rows = list(csv.DictReader(io.StringIO(export(capsys, "--store", str(db)))))
    assert [r["session_id"] for r in rows] == [m["session_id"] for m in made]
    for row, rec in zip(rows, made):
        assert row["energy_wh"] == ("" if rec["energy_wh"] is None else str(rec["energy_wh"]))
        if rec["cost"]:
            assert int(row["total_m"]) == rec["cost"]["total_m"]
            assert row["total"] == "%.3f" % (rec["cost"]["total_m"] / 1000)
            assert row["currency"] == "EUR"
    assert rows[0]["started_utc"] == "2025-12-01T01:00:00Z"
    assert rows[-1]["state"] == "started" and rows[-1]["stopped_utc"] == ""
    assert json.loads(export(capsys, "--store", str(db), "--format", "json")) == made
    conn.close()


def test_filters(tmp_path, capsys):
    db = tmp_path / "edge.db"
    conn, made = fill(db)

    def ids(*args):
        return [r["session_id"] for r in json.loads(export(capsys, "--store", str(db), "--format", "json", *args))]
    assert ids("--station", "CP001") == [made[0]["session_id"], made[2]["session_id"]]
    assert ids("--group", "g-guest") == [made[1]["session_id"], made[2]["session_id"]]
    assert ids("--since", "2025-12-02") == [made[2]["session_id"], made[3]["session_id"]]
    assert ids("--until", "2025-12-01T02:00:00Z") == [made[0]["session_id"]]
    assert ids("--since", "2025-12-01T03:00+01:00", "--until", "2025-12-02") == [made[1]["session_id"]]
    conn.close()


def test_export_reads_while_the_service_writes(tmp_path, capsys):
    db = tmp_path / "edge.db"
    conn, made = fill(db)
    store = SessionStore(conn)
    with transaction(conn):                  # the service in the middle of a write
        store.start("CP009", 1, 7, "LATE", 0, DAY, group_id="g-staff", tariff=TARIFF)
        out = json.loads(export(capsys, "--store", str(db), "--format", "json"))
        assert len(out) == len(made)         # the committed state, not blocked, not half a write
    assert len(json.loads(export(capsys, "--store", str(db), "--format", "json"))) == len(made) + 1
    conn.close()


def test_export_to_a_file_and_from_the_site_file(tmp_path, capsys):
    db = tmp_path / "edge.db"
    conn, made = fill(db)
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"site": SITE_DICT, "store": {"path": str(db)}}))
    out = tmp_path / "s.csv"
    assert edge_main(["sessions", "export", str(site), "--out", str(out)]) == 0
    assert len(list(csv.DictReader(out.open()))) == len(made)
    assert f"{len(made)} session(s) written" in capsys.readouterr().err
    conn.close()


def test_missing_store_and_bad_dates_are_bad_input(tmp_path, capsys):
    assert edge_main(["sessions", "export", "x", "--store", str(tmp_path / "none.db")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()          # read-only: nothing created


def test_history_lists_the_changes(tmp_path, capsys):
    db = tmp_path / "edge.db"
    conn = open_db(db)
    site = Site.from_dict(SITE_DICT)
    book = GroupBook.from_snapshot(snapshot(1), site, by="sync", now_s=DAY)
    book2 = book.rename_group("g-staff", "Employees", by="admin", now_s=DAY + 60)
    lists = ListsStore(conn)
    lists.save_snapshot(1, b"\x80", history=book2.history)
    capsys.readouterr()
    assert edge_main(["history", "x", "--store", str(db)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any("g-staff" in line and "admin" in line and "Employees" in line for line in out), out
    assert edge_main(["history", "x", "--store", str(db), "--group", "nope"]) == 0
    assert capsys.readouterr().out == ""
    assert edge_main(["history", "x", "--store", str(db), "--format", "json", "--since", "2025-12-01T00:00:30"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert entries and all(e["at_s"] >= DAY + 30 for e in entries)
    conn.close()
