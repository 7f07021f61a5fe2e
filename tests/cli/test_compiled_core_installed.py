"""A wheel unpacks a compiled module a few ms before its .py: in an installed package
that is no sign of a stale build, while in a source tree it still is."""
import importlib.machinery
import os

from edge import compiled_core


def _layout(tmp_path, with_setup_py):
    core = tmp_path / "edge" / "core"
    core.mkdir(parents=True)
    so = core / ("allocation" + importlib.machinery.EXTENSION_SUFFIXES[0])
    py = core / "allocation.py"
    so.write_bytes(b"")
    py.write_text("")
    os.utime(so, (1000, 1000))
    os.utime(py, (1000.005, 1000.005))         # the .py landed 5 ms later
    if with_setup_py:
        (tmp_path / "setup.py").write_text("")
    return core


def test_installed_package_is_never_stale(tmp_path, monkeypatch):
    monkeypatch.setattr(compiled_core, "CORE_DIR", _layout(tmp_path, with_setup_py=False))
    assert not compiled_core.in_source_tree()
    assert compiled_core.stale() == []


def test_source_tree_still_reports_a_stale_build(tmp_path, monkeypatch):
    monkeypatch.setattr(compiled_core, "CORE_DIR", _layout(tmp_path, with_setup_py=True))
    assert compiled_core.in_source_tree()
    assert compiled_core.stale() == ["allocation"]
