"""Randomised cross-check of authorize against a plain re-statement of the rules.

Runs under MicroPython too (no hypothesis there): a small linear congruential
generator builds books and queries; each decision is checked against rules
written out again here from docs/domain.md, on a UTC site so that wall-clock
time is plain arithmetic.
"""
from edge.core import authorize as A
from edge.core.book import GroupBook
from edge.core.topology import Site

SITE = Site.from_dict({
    "site_id": "rnd", "timezone": "UTC0", "grid": {"max_current_a": 80},
    "charging_groups": [
        {"id": "cg1", "stations": [{"id": "S1", "connectors": [{"id": 1, "max_current_a": 16},
                                                               {"id": 2, "max_current_a": 16}]}]},
        {"id": "cg2", "stations": [{"id": "S2", "connectors": [{"id": 1, "max_current_a": 32}]}]},
    ],
})
PLACES = [("S1", 1), ("S1", 2), ("S2", 1), ("S1", None), ("S2", None)]
RANK = {"drivers": 0, "cards": 1, "eroaming": 2}


class Lcg:
    def __init__(self, seed):
        self.x = seed

    def next(self, n):
        self.x = (self.x * 1103515245 + 12345) % 2147483648
        return (self.x >> 8) % n

    def pick(self, seq):
        return seq[self.next(len(seq))]


def _random_snapshot(r):
    groups = []
    kinds = ["drivers", "cards", "adhoc"]
    for i in range(1 + r.next(4)):
        kind = r.pick(kinds)
        g = {"id": "g%d" % i, "name": "G", "kind": kind,
             "tariff": {"currency": "EUR", "energy_m_per_kwh": 100 + i},
             "active_on": {"site": r.next(5) == 0,
                           "charging_groups": ["cg1"] if r.next(4) == 0 else [],
                           "stations": ["S2"] if r.next(3) == 0 else [],
                           "connectors": [["S1", 2]] if r.next(3) == 0 else []},
             "prioritised": r.next(2) == 0, "state": "archived" if r.next(4) == 0 else "active"}
        if kind == "drivers":
            g["billing"] = "automatic"
        groups.append(g)
    if r.next(2):
        start = r.next(23)
        groups.append({"id": "gr", "name": "R", "kind": "eroaming",
                       "tariff": {"currency": "EUR", "energy_m_per_kwh": 250},
                       "active_on": {"site": True}, "prioritised": r.next(2) == 0,
                       "state": "active", "windows": [{"days": [r.next(7)],
                                    "start": "%02d:00" % start, "end": "%02d:00" % (start + 1 + r.next(24 - start))}]})
    token_groups = [g["id"] for g in groups if g["kind"] != "adhoc"]
    tokens = []
    if token_groups:
        for i in range(r.next(5)):
            gl = []
            for _ in range(1 + r.next(3)):
                gid = r.pick(token_groups)
                if gid not in gl:
                    gl.append(gid)
            tokens.append({"uid": "T%d" % i, "groups": gl, "status": "blocked" if r.next(5) == 0 else "valid",
                           "expires_s": None if r.next(2) else 1750000000 + r.next(10) * 86400,
                           "driver": None, "provider": "DE-X"})
    return {"version": 1, "groups": groups, "drivers": [], "tokens": tokens}


def _active(g, station, connector):
    a = g["active_on"]
    if a["site"] or (station == "S1" and "cg1" in a["charging_groups"]) or station in a["stations"]:
        return True
    for s, c in a["connectors"]:
        if s == station and (connector is None or c == connector):
            return True
    return False


def _open(g, t):
    if g["kind"] != "eroaming":
        return True
    day = (t // 86400 + 3) % 7          # 1970-01-01 was a Thursday (3 when Monday is 0)
    minute = (t % 86400) // 60
    for w in g["windows"]:
        s = int(w["start"][:2]) * 60
        e = int(w["end"][:2]) * 60
        if day in w["days"] and s <= minute < e:
            return True
    return False


def test_random_books_follow_the_written_rules():
    r = Lcg(20260101)
    checked_accepts = 0
    for _ in range(150):
        snap = _random_snapshot(r)
        book = GroupBook.from_snapshot(snap, SITE)
        groups = {}
        for g in snap["groups"]:
            groups[g["id"]] = g
        for _ in range(15):
            station, connector = r.pick(PLACES)
            t = 1750000000 + r.next(14 * 24) * 3600 + r.next(3600)
            uid = "T%d" % r.next(6)
            d = A.authorize(book, SITE, uid, station, connector, t)
            tok = None
            for x in snap["tokens"]:
                if x["uid"] == uid:
                    tok = x
            if tok is None:
                assert not d.accepted
                continue
            usable = tok["status"] == "valid" and (tok["expires_s"] is None or t < tok["expires_s"])
            passing = [groups[gid] for gid in tok["groups"]
                       if groups[gid]["state"] != "archived" and _active(groups[gid], station, connector)
                       and _open(groups[gid], t)]
            if usable and passing:
                best = passing[0]
                for g in passing:
                    key = (not g["prioritised"], RANK[g["kind"]], g["id"])
                    if key < (not best["prioritised"], RANK[best["kind"]], best["id"]):
                        best = g
                assert d.accepted and d.group_id == best["id"], (d, best["id"])
                assert d.prioritised == best["prioritised"]
                checked_accepts += 1
            else:
                assert not d.accepted, d
    assert checked_accepts > 50   # the generator really produces acceptances to check
