"""What is checked before the service starts, so a wrong site is one line per problem.

``config_errors(data)`` finds the errors of a site file section by section: the
parsers stop at their first error, so each failing section is set aside and the
rest checked again (a section that depends on it, such as the station passwords
on the topology, is set aside with it). ``environment_errors(cfg)`` checks what the
file names on this machine: the files exist and can be read, the TLS key matches
its certificate, the store's directory is writable (or can be created), the ports
are free and the serial ports exist. Both return ``ValidationError``s, whose
``str()`` is the line to show; the service's `edge run` and `edge validate` share them.
"""
from __future__ import annotations

import copy
import errno
import os
import socket
import ssl
from pathlib import Path
from typing import Any

from edge import config
from edge.core.errors import ValidationError

# A stand-in topology while the real one is wrong, so other sections still get checked.
_STAND_IN_SITE = {"site_id": "x", "timezone": "UTC0", "charging_groups": [], "grid": {"max_current_a": 16}}


def config_errors(data: Any) -> tuple[config.EdgeConfig | None, list[ValidationError]]:
    """(the config if all is well, every section's first error)."""
    if not isinstance(data, dict):
        try:
            return config.from_dict(data), []
        except ValidationError as exc:
            return None, [exc]
    d = copy.deepcopy(data)
    errors: list[ValidationError] = []
    for _ in range(len(config.SECTIONS) + len(d) + 1):
        try:
            cfg = config.from_dict(d)
        except ValidationError as exc:
            errors.append(exc)
            if not _set_aside(d, exc.field):
                return None, errors
            continue
        return (cfg if not errors else None), errors
    return None, errors


def _set_aside(d: dict, field: str) -> bool:
    """Removes what ``field`` belongs to; False when nothing more can be checked."""
    head = field.split(".")[0].split("[")[0]
    if head == "config" and "." in field:                  # an unknown top-level section
        d.pop(field.split(".", 1)[1], None)
        return True
    if head == "site":
        if d.get("site") == _STAND_IN_SITE:
            return False
        d["site"] = copy.deepcopy(_STAND_IN_SITE)
        if isinstance(d.get("ocpp"), dict):
            d["ocpp"].pop("stations", None)              # passwords are per station of the site
        return True
    if head in config.SECTIONS and head in d:
        del d[head]
        if head == "meters" and isinstance(d.get("control"), dict):
            d["control"].pop("grid_meter", None)         # names a meter
        return True
    if head == "control" and isinstance(d.get("control"), dict) and "." in field:
        d["control"].pop(field.split(".")[1], None)
        return True
    return False


# -- the machine ---------------------------------------------------------------------------

def _readable_file(field: str, path: str | None, what: str) -> ValidationError | None:
    if not path:
        return None
    p = Path(path)
    if not p.exists():
        return ValidationError(field, path, f"{what} not found; put it there or correct the path")
    if not p.is_file():
        return ValidationError(field, path, f"is not a file ({what})")
    if not os.access(p, os.R_OK):
        return ValidationError(field, path, f"{what} cannot be read by this user (uid {os.getuid()}); "
                                            f"fix its owner or mode")
    return None


def _pair(cert_field: str, cert: str | None, key_field: str, key: str | None,
          what: str) -> list[ValidationError]:
    out = [e for e in (_readable_file(cert_field, cert, f"{what} certificate"),
                       _readable_file(key_field, key, f"{what} private key")) if e]
    if out or not cert or not key:
        return out
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        why = "does not match the certificate" if "KEY_VALUES_MISMATCH" in str(exc) or \
            "key values mismatch" in str(exc) else f"cannot be loaded with the certificate ({exc.reason})"
        out.append(ValidationError(key_field, key, f"{why} {cert}; use the key the certificate was issued for"))
    return out


def _ca(field: str, path: str | None) -> list[ValidationError]:
    err = _readable_file(field, path, "CA certificate")
    if err or not path:
        return [err] if err else []
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        return [ValidationError(field, path, f"is not a PEM CA certificate ({exc.reason})")]
    return []


def store_error(path: str, create: bool = False) -> ValidationError | None:
    """The store file's directory must exist and be writable; one missing level may be
    created (``create``), never a whole tree: a mistyped path must not quietly start a
    second, empty store."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.exists() and not os.access(p, os.R_OK | os.W_OK):
        return ValidationError("store.path", path, f"cannot be read and written by this user (uid {os.getuid()})")
    if parent.is_dir():
        if not os.access(parent, os.W_OK | os.X_OK):
            return ValidationError("store.path", path, f"its directory {parent} is not writable by this user "
                                                       f"(uid {os.getuid()}); `edge install` sets the owner")
        return None
    if parent.exists():
        return ValidationError("store.path", path, f"{parent} is not a directory")
    if not parent.parent.is_dir() or not os.access(parent.parent, os.W_OK | os.X_OK):
        return ValidationError("store.path", path, f"its directory {parent} does not exist and cannot be created "
                                                   f"here; create it (`edge install` does) or correct the path")
    if create:
        try:
            parent.mkdir(mode=0o750)
        except OSError as exc:
            return ValidationError("store.path", path, f"cannot create {parent}: {exc.strerror}")
    return None


def port_error(field: str, host: str, port: int) -> ValidationError | None:
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # As asyncio's server binds: SO_REUSEADDR, so a port in TIME_WAIT counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return ValidationError(field, port, f"is taken on {host} by another program; stop it "
                                                    f"(`ss -ltnp 'sport = :{port}'` names it) or choose another port")
            if exc.errno == errno.EACCES:
                return ValidationError(field, port, "is below 1024 and needs privileges; use 1024 or above")
            if exc.errno == errno.EADDRNOTAVAIL:
                return ValidationError(field.replace("port", "host"), host,
                                       "is not an address of this machine (0.0.0.0 listens on all)")
            return ValidationError(field, port, f"cannot be opened on {host}: {exc.strerror}")
    return None


def environment_errors(cfg: config.EdgeConfig, ports: bool = True, create_store: bool = False) -> list[ValidationError]:
    out: list[ValidationError] = []
    out += _pair("ocpp.tls_cert", cfg.ocpp.tls_cert, "ocpp.tls_key", cfg.ocpp.tls_key, "OCPP TLS")
    tls = cfg.cloud.tls if cfg.cloud is not None else None
    if tls is not None:
        out += _ca("cloud.tls.ca_file", tls.ca_file)
        out += _pair("cloud.tls.cert_file", tls.cert_file, "cloud.tls.key_file", tls.key_file, "cloud client")
    err = store_error(cfg.store_path, create=create_store)
    if err:
        out.append(err)
    if ports:
        err = port_error("ocpp.port", cfg.ocpp.host, cfg.ocpp.port)
        if err:
            out.append(err)
    for i, m in enumerate(cfg.meters):
        if m.transport == "rtu" and not Path(m.serial_port).exists():
            out.append(ValidationError(f"meters[{i}].serial_port", m.serial_port,
                                       "no such device; check the RS-485 adapter is plugged in (`ls /dev/tty*`)"))
        elif m.transport == "rtu" and not os.access(m.serial_port, os.R_OK | os.W_OK):
            out.append(ValidationError(f"meters[{i}].serial_port", m.serial_port,
                                       "cannot be opened by this user; add it to the dialout group"))
    return out
