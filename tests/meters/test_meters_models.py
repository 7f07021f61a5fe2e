import copy
import json

import pytest

from edge.core.errors import ValidationError
from edge.meters.model import MODELS_DIR, MeterModel, available_models, load_model

REQUIRED = {"eastron_sdm630", "eastron_sdm72dm", "carlo_gavazzi_em24", "janitza_umg604",
            "abb_b23", "siemens_pac2200", "sunspec_meter"}


def test_every_required_model_has_a_data_file_citing_its_document():
    assert REQUIRED <= set(available_models())
    for name in available_models():
        model = load_model(name)
        assert model.source["title"].strip() and model.source["version"].strip()
        assert model.phases["current_da"][0] is not None


def test_read_plan_covers_every_register_within_limits():
    for name in available_models():
        model = load_model(name)
        blocks = model.read_blocks()
        covered = {a for start, n in blocks for a in range(start, start + n)}
        for part in model.parts():
            assert set(range(part.address, part.address + part.count)) <= covered
        assert all(n <= model.max_read for _, n in blocks)


def test_eastron_plan_does_not_read_undocumented_gaps():
    # max_gap 0: only the documented parameter registers are asked for
    assert load_model("eastron_sdm630").read_blocks() == [(0, 18), (52, 2), (72, 4)]


def _sdm630():
    return json.loads((MODELS_DIR / "eastron_sdm630.json").read_text())


@pytest.mark.parametrize("path, value, field", [
    (("function_code",), 5, "function_code"),
    (("word_order",), "middle", "word_order"),
    (("fields", "current_da", 1, "type"), "float16", "fields.current_da[1].type"),
    (("fields", "voltage_dv", 2, "unit"), "kV", "fields.voltage_dv[2].unit"),
    (("fields", "import_wh", "address"), -1, "fields.import_wh.address"),
    (("fields", "power_w", "address"), 65535, "fields.power_w.address"),
    (("source", "title"), "", "source.title"),
    (("max_read",), 200, "max_read"),
    (("fields", "current_da", 0, "scale_exps"), -1, "fields.current_da[0].scale_exps"),
    (("manufacturer_name",), "x", "manufacturer_name"),
])
def test_broken_model_files_are_refused_naming_the_field(path, value, field):
    data = _sdm630()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError) as err:
        MeterModel.from_dict(data)
    assert err.value.field == field


def test_overlapping_registers_are_refused():
    data = _sdm630()
    data["fields"]["power_w"]["address"] = 13  # inside phase 1 power (12..13)
    with pytest.raises(ValidationError) as err:
        MeterModel.from_dict(data)
    assert "overlaps" in str(err.value)


def test_wraps_only_on_unsigned_counters():
    data = _sdm630()
    data["fields"]["import_wh"]["wraps"] = True
    with pytest.raises(ValidationError) as err:
        MeterModel.from_dict(data)
    assert err.value.field == "fields.import_wh.wraps"


def test_unknown_model_name_and_path_tricks_are_refused():
    for name in ("no_such_meter", "../abb_b23", "ABB_B23", ""):
        with pytest.raises(ValidationError) as err:
            load_model(name)
        assert err.value.field == "model"


def test_missing_phase_l1_is_refused():
    data = copy.deepcopy(_sdm630())
    data["fields"]["current_da"][0] = None
    with pytest.raises(ValidationError) as err:
        MeterModel.from_dict(data)
    assert err.value.field == "fields.current_da[0]"


def test_sunspec_addresses_must_lie_in_the_model_block():
    data = json.loads((MODELS_DIR / "sunspec_meter.json").read_text())
    data["scale_factors"]["W_SF"]["address"] = 200
    with pytest.raises(ValidationError) as err:
        MeterModel.from_dict(data)
    assert err.value.field == "scale_factors.W_SF.address"
    data = json.loads((MODELS_DIR / "sunspec_meter.json").read_text())
    data["fields"]["power_w"]["address"] = 1  # the L register
    with pytest.raises(ValidationError) as err:
        MeterModel.from_dict(data)
    assert "outside the SunSpec model block" in str(err.value)
