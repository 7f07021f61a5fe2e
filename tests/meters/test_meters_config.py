import pytest

from edge.core.errors import ValidationError
from edge.meters import MeterConfig, parse_meters


def base(**kw):
    d = {"id": "grid", "model": "eastron_sdm630", "host": "10.0.0.5"}
    d.update(kw)
    return d


def test_defaults():
    cfg = MeterConfig.from_dict(base())
    assert (cfg.transport, cfg.port, cfg.device_id) == ("tcp", 502, 1)
    assert (cfg.interval_s, cfg.timeout_s, cfg.retries, cfg.stale_after_s) == (1.0, 0.5, 1, 5.0)
    assert cfg.model.name == "eastron_sdm630"


def test_poll_interval_goes_down_to_250_ms_and_no_further():
    assert MeterConfig.from_dict(base(interval_s=0.25)).interval_s == 0.25
    with pytest.raises(ValidationError) as err:
        parse_meters([base(interval_s=0.2)])
    assert err.value.field == "meters[0].interval_s" and err.value.value == 0.2
    assert "at least 0.25 seconds" in str(err.value)


@pytest.mark.parametrize("change, field, value", [
    ({"model": "sdm630"}, "meters[0].model", "sdm630"),
    ({"transport": "udp"}, "meters[0].transport", "udp"),
    ({"host": ""}, "meters[0].host", ""),
    ({"port": 70000}, "meters[0].port", 70000),
    ({"port": "502"}, "meters[0].port", "502"),
    ({"device_id": True}, "meters[0].device_id", True),
    ({"interval_s": 0}, "meters[0].interval_s", 0),
    ({"interval_s": float("nan")}, "meters[0].interval_s", None),
    ({"timeout_s": -1}, "meters[0].timeout_s", -1),
    ({"retries": 9}, "meters[0].retries", 9),
    ({"timout_s": 1}, "meters[0].timout_s", 1),
    ({"id": "grid meter"}, "meters[0].id", "grid meter"),
    ({"transport": "rtu"}, "meters[0].serial_port", None),
    ({"transport": "rtu", "serial_port": "/dev/ttyUSB0", "device_id": 0}, "meters[0].device_id", 0),
    ({"transport": "rtu", "serial_port": "/dev/ttyUSB0", "parity": "X"}, "meters[0].parity", "X"),
    ({"transport": "rtu", "serial_port": "/dev/ttyUSB0", "baudrate": 12345}, "meters[0].baudrate", 12345),
    ({"transport": "rtu_over_tcp", "device_id": 248}, "meters[0].device_id", 248),
])
def test_bad_settings_name_field_and_value(change, field, value):
    with pytest.raises(ValidationError) as err:
        parse_meters([base(**change)])
    assert err.value.field == field
    if value is not None:
        assert err.value.value == value
    assert str(err.value).startswith(field + ": ")


def test_serial_settings():
    cfg = MeterConfig.from_dict(base(transport="rtu", serial_port="/dev/ttyUSB0", host=None,
                                     baudrate=19200, parity="E", device_id=247))
    assert (cfg.serial_port, cfg.baudrate, cfg.parity, cfg.device_id) == ("/dev/ttyUSB0", 19200, "E", 247)
    assert cfg.link_key() == ("rtu", "/dev/ttyUSB0")


def test_duplicate_ids_and_bus_slots_are_refused():
    with pytest.raises(ValidationError) as err:
        parse_meters([base(), base(host="10.0.0.6")])
    assert err.value.field == "meters[1].id"
    with pytest.raises(ValidationError) as err:
        parse_meters([base(), base(id="pv")])
    assert err.value.field == "meters[1].device_id"
    two = parse_meters([base(), base(id="pv", device_id=2)])
    assert [c.id for c in two] == ["grid", "pv"]


def test_not_a_list_or_not_an_object():
    with pytest.raises(ValidationError) as err:
        parse_meters({"id": "grid"})
    assert err.value.field == "meters"
    with pytest.raises(ValidationError) as err:
        parse_meters(["grid"])
    assert err.value.field == "meters[0]"
