import json

import pytest

from edge.core.errors import ValidationError
from host_tools import boards


def test_every_shipped_board_file_is_valid():
    found = boards.all_boards()
    ids = {b["id"] for b in found}
    assert {"raspberry-pi-4b", "esp32-devkitc", "rp2-pico-w"} <= ids
    for b in found:
        assert b["sources"], b["id"]


def test_micropython_boards_never_claim_cpython_adapters():
    for b in boards.all_boards():
        if b["runtime"] == "micropython":
            assert "ocpp_server" not in b["runs"] and "sqlite_store" not in b["runs"]
            # A token entry costs about 100 bytes of heap on MicroPython (uid string, tuple,
            # dict slot): the default list size must leave room for everything else.
            assert b["defaults"]["max_tokens"] * 100 < b["heap_kb"] * 1024 * 3 // 4, b["id"]


def _good():
    return json.loads((boards.BOARDS_DIR / "esp32-devkitc.json").read_text())


@pytest.mark.parametrize("mutate, field", [
    (lambda b: b.pop("heap_kb"), "heap_kb"),
    (lambda b: b.update(runtime="circuitpython"), "runtime"),
    (lambda b: b["runs"].append("ocpp_server"), "runs"),
    (lambda b: b["runs"].append("teleport"), "runs[3]"),
    (lambda b: b["serial"][0].pop("tx_pin"), "serial[0].tx_pin"),
    (lambda b: b.update(ram_kb=-1), "ram_kb"),
    (lambda b: b.update(sources=[]), "sources"),
    (lambda b: b["defaults"].update(max_tokens="many"), "defaults.max_tokens"),
])
def test_bad_board_is_refused_naming_the_field(mutate, field):
    data = _good()
    mutate(data)
    with pytest.raises(ValidationError) as err:
        boards.validate_board(data, "esp32-devkitc")
    assert err.value.field == f"esp32-devkitc.{field}"


def test_unknown_board_names_the_known_ones(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps(_good() | {"id": "x"}))
    with pytest.raises(ValidationError) as err:
        boards.load_board("nope", tmp_path)
    assert "x" in str(err.value)


def test_board_file_must_be_named_after_its_id(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps(_good()))
    with pytest.raises(ValidationError) as err:
        boards.load_board("other", tmp_path)
    assert err.value.field == "other.id"


def test_invalid_json_board_file(tmp_path):
    (tmp_path / "bad.json").write_text("{ not json")
    with pytest.raises(ValidationError) as err:
        boards.load_board("bad", tmp_path)
    assert "not valid JSON" in str(err.value)


def test_every_claimed_capability_is_backed_by_code_and_a_test():
    from pathlib import Path
    from host_tools import node_flash
    root = Path(boards.__file__).resolve().parents[1]
    claimed = set()
    for b in boards.all_boards():
        for cap in b["runs"]:
            code, test = boards.BACKED_BY[(b["runtime"], cap)]
            assert (root / code).exists() and (root / test).exists(), (b["id"], cap)
            claimed.add((b["runtime"], cap))
            if b["runtime"] == "micropython" and cap != "core":
                # `edge flash --meter` puts the code behind the claim on the board.
                copied = [dest for _, dest in node_flash.node_files(root)]
                assert "lib/" + code in copied, (b["id"], cap)
    assert ("micropython", "meters_rtu") in claimed and ("micropython", "node_mqtt") in claimed


def test_a_micropython_board_cannot_claim_the_cloud_link():
    data = _good()
    data["runs"].append("cloud_mqtt")
    with pytest.raises(ValidationError) as err:
        boards.validate_board(data, "esp32-devkitc")
    assert "CPython" in err.value.message
