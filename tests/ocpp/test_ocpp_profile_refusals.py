"""A wallbox that cannot take charging profiles is told once, not every cycle, and what it
says reaches the log quoted, cut, once."""
import logging

import ocpp_wallbox
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16.enums import Action as A16
from ocpp_testdata import NOW
from ocpp_wallbox import Wallbox16, connect, ts, until

HOSTILE = "no smart charging\nERROR edge: forged line " + "x" * 5000


class NoProfiles16(Wallbox16):
    @on(A16.set_charging_profile)
    def on_set_charging_profile(self, connector_id, cs_charging_profiles):
        self._record("SetChargingProfile", {"connector_id": connector_id,
                                            "profile": cs_charging_profiles})
        raise OcppNotImplemented(description=HOSTILE)


async def test_permanent_refusal_is_not_retried_until_the_next_boot(
        gateway, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="edge")
    monkeypatch.setattr(ocpp_wallbox, "Wallbox16", NoProfiles16)
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    res = await c.cp.call(call16.StartTransaction(connector_id=1, id_tag="STAFF1",
                                                  meter_start=0, timestamp=ts(NOW)))
    asked = len(c.cp.calls("SetChargingProfile"))
    assert asked == 1            # the station maximum at boot; nothing more after that
    for amps in (6, 8, 10, 12, 14):   # five cycles with changing limits
        got = await gateway.apply_limits({("CP16", 1): (amps * 10, 3)})
        assert got == {("CP16", 1): "unsupported"}
    assert len(c.cp.calls("SetChargingProfile")) == asked
    live = gateway.live_sessions()
    assert live[0]["controllable"] is False     # planned at its maximum
    assert gateway.station_status()["CP16"]["profiles_unsupported"] is True
    # said once, quoted and cut; the peer's newline never starts a line of our log
    about = [r for r in caplog.records if r.levelno >= logging.WARNING
             and "CP16" in r.getMessage() and "profile" in r.getMessage()]
    assert len(about) == 1
    assert "NotImplemented" in about[0].getMessage()
    for r in caplog.records:
        if not r.name.startswith("edge"):
            continue        # the test wallbox's own library log
        text = r.getMessage()
        assert "\n" not in text and len(text) < 400, text[:200]
    assert not [r for r in caplog.records if r.name.startswith("edge.ocpp_gateway.wire")
                and r.levelno >= logging.WARNING]
    await c.close()
    # after its next boot (new firmware?) it is asked again
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    await until(lambda: ("CP16", "boot") not in gateway._running)
    assert len(c.cp.calls("SetChargingProfile")) >= 1
    await c.close()


class HostileTrigger16(Wallbox16):
    @on(A16.trigger_message)
    def on_trigger(self, requested_message, connector_id=None):
        self._record("TriggerMessage", {"requested_message": requested_message})
        if requested_message != "StatusNotification":
            from ocpp.exceptions import GenericError
            raise GenericError(description=HOSTILE)
        return super().on_trigger(requested_message, connector_id)


async def test_peer_error_text_is_logged_once_quoted_and_cut(gateway, monkeypatch, caplog):
    monkeypatch.setattr(ocpp_wallbox, "Wallbox16", HostileTrigger16)
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="edge")
    assert await gateway.trigger("CP16", "MeterValues", 1) is False
    ours = [r for r in caplog.records if r.name.startswith("edge")
            and r.levelno >= logging.WARNING]
    assert len(ours) == 1                       # one line per incident, not two
    text = ours[0].getMessage()
    assert "GenericError" in text and "\\n" in text      # the newline shown escaped
    assert "\n" not in text and len(text) < 300
    await c.close()
