# MicroPython manifest (micropython-lib style): freezes the portable core into a
# firmware build, e.g.  make BOARD=ESP32_GENERIC FROZEN_MANIFEST=.../edge/core/manifest.py
# The file list is explicit on purpose; tests/host_tools/test_manifest.py checks that it
# names every module of edge/core and nothing else.
metadata(description="Portable core of the EV charging edge controller", version="0.1.0")

package(
    "edge",
    files=[
        "__init__.py",
        "core/__init__.py",
        "core/alloc_capacity.py",
        "core/alloc_config.py",
        "core/alloc_inputs.py",
        "core/alloc_ramp.py",
        "core/alloc_reasons.py",
        "core/alloc_state.py",
        "core/allocation.py",
        "core/authorize.py",
        "core/book.py",
        "core/checks.py",
        "core/circuits.py",
        "core/civil.py",
        "core/delta.py",
        "core/errors.py",
        "core/groups.py",
        "core/history.py",
        "core/tariff.py",
        "core/tokens.py",
        "core/topology.py",
        "core/tzrule.py",
        "core/windows.py",
    ],
    base_path="../..",
)
