"""Local lists a wallbox accepts: schema-valid when empty, never over its capacity."""
import ocpp_wallbox
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16.enums import Action as A16
from ocpp_testdata import NOW, snapshot
from ocpp_wallbox import Wallbox16, connect, until

from edge.core.book import GroupBook


async def test_v201_full_update_that_empties_the_list_is_schema_valid(gateway, lists, site):
    lists.replace(GroupBook.from_snapshot({"version": 5, "groups": [], "drivers": [],
                                           "tokens": []}, site, "sync", NOW))
    c = await connect(gateway.port, "CP201", "2.0.1", "secret-201")
    # the test wallbox validates every request against the 2.0.1 schema
    sent = c.cp.calls("SendLocalList")
    assert [(u["update_type"], u["entries"]) for u in sent] == [("Full", [])]
    assert c.cp.list_version_held == gateway.station_status()["CP201"]["local_list_version"]
    assert c.cp.list_version_held >= 1
    await c.close()


class FirstReadFails16(Wallbox16):
    """A wallbox whose capacity read is lost once (it went away during its first boot)."""
    failed = False

    @on(A16.get_configuration)
    def on_get_configuration(self, key=None, **kw):
        if not FirstReadFails16.failed:
            FirstReadFails16.failed = True
            raise RuntimeError("connection lost")
        return super().on_get_configuration(key, **kw)


def _many_tokens(site, n):
    extra = [{"uid": "T%03d" % i, "groups": ["g-staff"], "status": "valid", "expires_s": None,
              "driver": None, "provider": None} for i in range(n)]
    return GroupBook.from_snapshot(snapshot(version=2, extra_tokens=extra), site, "sync", NOW)


async def test_capacity_read_failed_at_boot_is_read_again_and_meanwhile_lists_stay_small(
        gateway, lists, site, monkeypatch):
    monkeypatch.setattr(ocpp_wallbox, "Wallbox16", FirstReadFails16)
    monkeypatch.setattr(FirstReadFails16, "failed", False)
    lists.replace(_many_tokens(site, 60))
    c = await connect(gateway.port, "CP16", "1.6", "secret-16", list_max=40)
    # capacity unknown: within the smallest size wallboxes have (25), so it is accepted
    assert len(c.cp.local_list) == 25
    assert gateway.station_status()["CP16"]["local_list_entries"] == 25
    await c.close()
    c = await connect(gateway.port, "CP16", "1.6", "secret-16", list_max=40, boot=False)
    await c.cp.call(call16.Heartbeat())        # talks without booting: a reconnect
    await until(lambda: len(c.cp.local_list) == 40)
    assert gateway.station_status()["CP16"]["local_list_max"] == 40
    assert len(c.cp.calls("GetConfiguration")) == 1
    await c.close()
