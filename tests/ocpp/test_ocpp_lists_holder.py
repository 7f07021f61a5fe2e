"""ListsHolder: atomic swap, subscribers, authorization through the current book."""
import copy

from ocpp_testdata import NOW, SITE, snapshot

from edge.core.book import GroupBook
from edge.core.topology import Site
from edge.lists_holder import ListsHolder


def _site(policy="deny"):
    d = copy.deepcopy(SITE)
    d["offline_unknown_tokens"] = policy
    return Site.from_dict(d)


def test_empty_holder_knows_nobody():
    site = _site()
    h = ListsHolder(site, None, clock=lambda: NOW)
    assert h.version == 0
    assert h.authorize("STAFF1", "CP16", 1).reason == "unknown_token"
    assert h.local_list("CP16", 10) == []


def test_offline_policy_follows_online_callback():
    site = _site("accept")
    online = [True]
    h = ListsHolder(site, GroupBook.from_snapshot(snapshot(), site, "sync", NOW),
                    online=lambda: online[0], clock=lambda: NOW)
    assert not h.authorize("NOBODY", "CP201", 1).accepted
    online[0] = False
    d = h.authorize("NOBODY", "CP201", 1)
    assert d.accepted and d.reason == "offline_unknown_accepted"


def test_replace_swaps_and_notifies_even_past_a_broken_subscriber():
    site = _site()
    h = ListsHolder(site, GroupBook.from_snapshot(snapshot(), site, "sync", NOW),
                    clock=lambda: NOW)
    old = h.book
    seen = []

    def broken(book):
        raise RuntimeError("listener bug")
    h.subscribe(broken)
    unsubscribe = h.subscribe(lambda b: seen.append(b.version))
    new = GroupBook.from_snapshot(snapshot(version=5), site, "sync", NOW)
    h.replace(new)
    assert h.book is new and h.version == 5 and seen == [5]
    assert old.version == 1          # readers holding the old book keep a valid book
    unsubscribe()
    h.replace(GroupBook.from_snapshot(snapshot(version=6), site, "sync", NOW))
    assert seen == [5]


def test_remote_start_and_local_list_use_the_clock():
    site = _site()
    t = [NOW]
    h = ListsHolder(site, GroupBook.from_snapshot(snapshot(), site, "sync", NOW),
                    clock=lambda: t[0])
    assert h.authorize_remote_start("pay-1", "CP16", 2).group_id == "g-adhoc"
    assert not h.authorize_remote_start("pay-1", "CP16", 1).accepted
    assert [e[0] for e in h.local_list("CP201", 10)] == ["STAFF1", "STAFF2", "CARD1"]
    assert [e[0] for e in h.local_list("CP201", 10, recent_uids=("CARD1",))][:3] == \
        ["STAFF1", "STAFF2", "CARD1"]
