"""Builds the core's hot modules as C extensions with Cython when it can.

Everything else is in pyproject.toml. The modules stay plain Python: the
extension is compiled from the same .py file (allocation.pxd adds C types), and
when Cython or a C compiler is missing the install goes on without it and the
.py modules run (see edge/compiled_core.py). EDGE_PURE_CORE=1 skips the build.
"""
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

HOT = ("allocation", "alloc_inputs", "alloc_ramp", "alloc_capacity", "alloc_state")


class OptionalBuildExt(build_ext):
    """A failed compile is a warning, not a failed install: the .py modules still run."""

    def run(self):
        try:
            super().run()
        except Exception as exc:    # setuptools raises several unrelated types here
            print("warning: the compiled core was not built (%s); the pure-Python core runs" % exc,
                  file=sys.stderr)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            print("warning: %s was not compiled (%s); its .py module runs" % (ext.name, exc), file=sys.stderr)


def extensions():
    if os.environ.get("EDGE_PURE_CORE", "") not in ("", "0"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("warning: Cython is not installed; the pure-Python core runs", file=sys.stderr)
        return []
    return cythonize(["edge/core/%s.py" % name for name in HOT], quiet=True,
                     compiler_directives={"language_level": 3, "binding": True})


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
