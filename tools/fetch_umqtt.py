"""Fetches micropython-lib's umqtt.simple from PyPI, so the node's tests run its real code.

On a board, `edge flash` installs umqtt.simple with `mip`. On CPython the node
program (host_tools/node_host.py) runs the same module over a small socket shim.
PyPI carries micropython-lib's umqtt.simple as an sdist without setup.py, which
`pip download` refuses to prepare; so this asks pip's own finder and session
(pip's configured index, certificates and proxy) for the file, checks its sha256
against the pin below and unpacks only umqtt/simple.py.

    .venv/bin/python tools/fetch_umqtt.py [DEST]     # default .venv/mp-lib
"""
from __future__ import annotations

import hashlib
import io
import sys
import tarfile
from pathlib import Path

PROJECT = "micropython-umqtt.simple"
VERSION = "1.3.4"
SHA256 = "b6a2520239e3992c63a7de9370ee9b3d9d27819a90359c521f1c0f7ccab8d12f"
MEMBER = "micropython-umqtt.simple-%s/umqtt/simple.py" % VERSION
DEFAULT_DEST = Path(__file__).resolve().parent.parent / ".venv" / "mp-lib"


def download() -> bytes:
    from pip._internal.commands import create_command
    from pip._vendor.packaging.specifiers import SpecifierSet

    cmd = create_command("download")
    options, _ = cmd.parse_args(["--no-deps"])
    with cmd.main_context():
        session = cmd.get_default_session(options)
        finder = cmd._build_package_finder(options=options, session=session, ignore_requires_python=True)
        found = finder.find_best_candidate(PROJECT, SpecifierSet("==" + VERSION)).best_candidate
        if found is None:
            raise SystemExit("%s %s is not on the package index" % (PROJECT, VERSION))
        resp = session.get(found.link.url)
        resp.raise_for_status()
        return resp.content


def main(argv: list[str]) -> int:
    dest = Path(argv[0]) if argv else DEFAULT_DEST
    target = dest / "umqtt" / "simple.py"
    marker = target.parent / ".sdist-sha256"
    if target.is_file() and marker.is_file() and marker.read_text().strip() == SHA256:
        return 0
    try:
        data = download()
    except (ImportError, AttributeError, TypeError) as exc:
        print("cannot use pip's finder (%s: %s); pip's internals changed: update tools/fetch_umqtt.py"
              % (type(exc).__name__, exc), file=sys.stderr)
        return 1
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        print("%s %s: sha256 %s, expected %s: refusing it" % (PROJECT, VERSION, digest, SHA256),
              file=sys.stderr)
        return 1
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        source = tar.extractfile(MEMBER).read()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source)
    marker.write_text(SHA256 + "\n")
    print("umqtt.simple %s -> %s" % (VERSION, target))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
