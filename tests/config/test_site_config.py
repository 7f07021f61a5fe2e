import copy
import json
import tomllib
from pathlib import Path

import pytest

from edge import config
from edge.core.errors import ValidationError
from host_tools import validate_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "site.toml"


def example() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


def test_example_file_loads_completely():
    cfg = config.load(EXAMPLE)
    assert cfg.site.site_id == "demo"
    assert cfg.site.grid_max_da == 630
    assert [m.id for m in cfg.meters] == ["grid"] and cfg.grid_meter == "grid"
    assert cfg.ocpp.port == 9000 and cfg.ocpp.stations["CP001"]["password"]
    assert cfg.cloud.port == 8883 and cfg.cloud.tls.cert_file.endswith("demo.crt")
    assert cfg.alloc.failsafe_non_ev_da == (400, 400, 400)
    assert cfg.interval_s == 1.0


def test_same_config_as_json(tmp_path):
    p = tmp_path / "site.json"
    p.write_text(json.dumps(example()))
    assert config.load(p).site.site_id == "demo"


def _refused(mutate) -> ValidationError:
    d = example()
    mutate(d)
    with pytest.raises(ValidationError) as err:
        config.from_dict(d)
    return err.value


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.update(extra={}), "config.extra"),
    (lambda d: d.pop("site"), "site"),
    (lambda d: d["ocpp"].update(port=70000), "ocpp.port"),
    (lambda d: d["ocpp"]["stations"].update(CP999={"password": "x" * 20}), "ocpp.stations.CP999"),
    (lambda d: d["ocpp"]["stations"]["CP001"].update(password="short"), "ocpp.stations.CP001.password"),
    (lambda d: d["ocpp"].update(tls_cert="/x.crt"), "ocpp.tls_key"),
    (lambda d: d["control"].update(grid_meter="nope"), "control.grid_meter"),
    (lambda d: d["control"].update(interval_s=0), "control.interval_s"),
    (lambda d: d["store"].update(path=""), "store.path"),
    (lambda d: d["store"].update(min_free_mb=-1), "store.min_free_mb"),
    (lambda d: d["store"].update(min_free_mb=2.5), "store.min_free_mb"),
    (lambda d: d["store"].update(min_free_mb=True), "store.min_free_mb"),
    (lambda d: d["store"].update(min_free_mb=2 ** 21), "store.min_free_mb"),
    (lambda d: d["store"].update(min_free_mb=4), "store.min_free_mb"),
    (lambda d: d["cloud"].update(port="x"), "cloud.port"),
    (lambda d: d["meters"][0].update(model="no_such_meter"), "meters[0].model"),
    (lambda d: d["load_management"].update(ramp_step_a=-1), "load_management.ramp_step_a"),
    (lambda d: d["site"]["grid"].update(max_current_a=-5), "site.grid.max_current_a"),
])
def test_wrong_settings_are_refused_naming_the_field(mutate, field):
    err = _refused(mutate)
    assert err.field == field, str(err)


def test_free_space_floor_default_and_setting():
    assert config.from_dict(example()).min_free_mb == 64
    d = example()
    d["store"]["min_free_mb"] = 0          # no floor
    assert config.from_dict(d).min_free_mb == 0


def test_stations_without_password_entry_are_listed_without_password():
    d = example()
    del d["ocpp"]["stations"]["CP002"]
    cfg = config.from_dict(d)
    assert cfg.ocpp.stations["CP002"] == {"password": None}
    assert any("CP002" in w for w in validate_config.warnings(cfg))


def test_no_cloud_section_means_local_only():
    d = example()
    del d["cloud"]
    assert config.from_dict(d).cloud is None


def test_unreadable_and_broken_files(tmp_path):
    with pytest.raises(ValidationError) as err:
        config.load(tmp_path / "missing.toml")
    assert "cannot be read" in str(err.value)
    bad = tmp_path / "bad.toml"
    bad.write_text("[site\n")
    with pytest.raises(ValidationError) as err:
        config.load(bad)
    assert "not valid TOML" in str(err.value)
    badj = tmp_path / "bad.json"
    badj.write_text("{\"site\": }")
    with pytest.raises(ValidationError) as err:
        config.load(badj)
    assert "line 1" in str(err.value.value)


def test_tls_with_a_wrong_certificate_names_the_file(tmp_path):
    d = example()
    d["ocpp"].update(tls_cert=str(tmp_path / "none.crt"), tls_key=str(tmp_path / "none.key"))
    cfg = config.from_dict(d)
    with pytest.raises(ValidationError) as err:
        cfg.ocpp.ssl_context()
    assert err.value.field == "ocpp.tls_cert"


def test_cli_ok_and_error(tmp_path, capsys):
    assert validate_config.main([str(EXAMPLE), "--file-only"]) == 0   # its TLS files are not on this machine
    out = capsys.readouterr().out
    assert "station CP001" in out and out.rstrip().endswith("OK")
    d = example()
    d["site"]["charging_groups"][0]["stations"][0]["connectors"][0]["phases"] = 2
    p = tmp_path / "s.json"
    p.write_text(json.dumps(d))
    assert validate_config.main([str(p)]) == 2
    assert "phases" in capsys.readouterr().err
