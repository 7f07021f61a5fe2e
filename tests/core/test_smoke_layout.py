# Placeholder removed once the core tests exist; checks the runner itself works.
import edge.core


def test_core_package_imports():
    assert edge.core.__name__ == "edge.core"
