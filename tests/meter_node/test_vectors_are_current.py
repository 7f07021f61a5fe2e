"""tests/node/vectors.json is what pymodbus and the msgpack package produce today: the
generator runs again and must write the very same file (else the portable tests would
compare against stale bytes)."""
import importlib.util
from pathlib import Path

import msgpack

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("node_vectors", ROOT / "tools" / "node_vectors.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_vectors_equal_a_fresh_generation():
    gen = _generator()
    assert gen.OUT.read_text() == gen.render()


def test_the_node_messages_in_the_vectors_decode_with_the_msgpack_package():
    gen = _generator()
    data = gen.generate()
    node_msgs = [c for c in data["msgpack"] if isinstance(c["value"], dict)
                 and c["value"].get("map") and c["value"]["map"][0] == ["v", 1]]
    assert len(node_msgs) == 3
    for case in node_msgs:
        decoded = msgpack.unpackb(bytes.fromhex(case["hex"]), strict_map_key=False)
        assert decoded == {k: v for k, v in case["value"]["map"]}
