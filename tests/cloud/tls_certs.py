"""A throw-away CA, a broker certificate for 127.0.0.1 and client certificates, made
with the real openssl CLI (EC keys: fast to generate)."""
from __future__ import annotations

import subprocess
from pathlib import Path


def _run(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(d: Path, name: str) -> tuple:
    key, crt = d / (name + ".key"), d / (name + ".crt")
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=" + name)
    return crt, key


def make_cert(d: Path, ca: tuple, name: str, cn: str, server: bool = False) -> tuple:
    key, csr, crt = d / (name + ".key"), d / (name + ".csr"), d / (name + ".crt")
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(csr), "-subj", "/CN=" + cn)
    ext = d / (name + ".ext")
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server
                   else "extendedKeyUsage=clientAuth\n")
    _run("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
         "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return crt, key
