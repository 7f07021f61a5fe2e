"""edge/core/manifest.py must freeze exactly the core: every module, nothing else."""
import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "edge" / "core"


def manifest_calls():
    tree = ast.parse((CORE / "manifest.py").read_text())
    return {node.func.id: node for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}


def test_manifest_names_every_core_module_and_nothing_else():
    pkg = manifest_calls()["package"]
    assert ast.literal_eval(pkg.args[0]) == "edge"
    kw = {k.arg: ast.literal_eval(k.value) for k in pkg.keywords}
    assert (CORE / kw["base_path"]).resolve() == CORE.parent.parent
    listed = set(kw["files"])
    on_disk = {"__init__.py"} | {"core/" + p.name for p in CORE.glob("*.py") if p.name != "manifest.py"}
    assert listed == on_disk, {"missing": sorted(on_disk - listed), "stale": sorted(listed - on_disk)}


def test_manifest_has_metadata():
    meta = manifest_calls()["metadata"]
    kw = {k.arg: ast.literal_eval(k.value) for k in meta.keywords}
    assert kw["version"] and kw["description"]
