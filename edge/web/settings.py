"""The ``[http]`` section of the site file: the local API and page (off without it).

    [http]
    host = "0.0.0.0"                  # where installers reach it; 127.0.0.1 for local only
    port = 8080
    admin_password_hash = "scrypt$14$8$1$..."     # python -m edge.web.passwords
    viewer_password_hash = "scrypt$14$8$1$..."    # optional: read-only login "viewer"
    # tls_cert = "/etc/edge/web.crt"  # HTTPS when both are given
    # tls_key = "/etc/edge/web.key"

Log in with HTTP basic authentication as ``admin`` or ``viewer``. Without TLS the
password crosses the network readable: bind to a trusted interface or configure TLS.
"""
from __future__ import annotations

import ssl
from typing import Any

from edge.core.errors import ValidationError
from edge.web.passwords import parse_hash

_KEYS = ("enabled", "host", "port", "tls_cert", "tls_key", "admin_password_hash", "viewer_password_hash",
         "events_kept")


class HttpSettings:
    def __init__(self, host: str, port: int, admin_hash: str, viewer_hash: str | None,
                 tls_cert: str | None = None, tls_key: str | None = None, events_kept: int = 200) -> None:
        self.host = host
        self.port = port
        self.admin_hash = admin_hash
        self.viewer_hash = viewer_hash
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.events_kept = events_kept

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls_cert:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ValidationError("http.tls_cert", self.tls_cert,
                                  f"cannot load certificate/key ({exc}); check both paths and that the key matches") from None
        return ctx


def parse_http(d: Any) -> HttpSettings | None:
    """None when there is no section or ``enabled = false``: the API is off by default."""
    if d is None:
        return None
    if not isinstance(d, dict):
        raise ValidationError("http", d, "must be a table/object")
    for key in d:
        if key not in _KEYS:
            raise ValidationError(f"http.{key}", d[key], f"unknown setting; known: {', '.join(_KEYS)}")
    enabled = d.get("enabled", True)
    if enabled is not True and enabled is not False:
        raise ValidationError("http.enabled", enabled, "must be true or false")
    if not enabled:
        return None
    host = d.get("host", "127.0.0.1")
    if not isinstance(host, str) or not host.strip():
        raise ValidationError("http.host", host, "must be a non-empty text (an address to listen on)")
    port = d.get("port", 8080)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValidationError("http.port", port, "must be a port number 0..65535 (0: any free port)")
    if "admin_password_hash" not in d:
        raise ValidationError("http.admin_password_hash", None,
                              "is required: make one with `python -m edge.web.passwords`")
    admin = d["admin_password_hash"]
    parse_hash(admin, "http.admin_password_hash")
    viewer = d.get("viewer_password_hash")
    if viewer is not None:
        parse_hash(viewer, "http.viewer_password_hash")
    cert, key = d.get("tls_cert"), d.get("tls_key")
    for name, v in (("tls_cert", cert), ("tls_key", key)):
        if v is not None and (not isinstance(v, str) or not v.strip()):
            raise ValidationError(f"http.{name}", v, "must be a file path")
    if bool(cert) != bool(key):
        raise ValidationError("http.tls_key" if cert else "http.tls_cert", key or cert, "TLS needs both tls_cert and tls_key")
    kept = d.get("events_kept", 200)
    if isinstance(kept, bool) or not isinstance(kept, int) or not 10 <= kept <= 10000:
        raise ValidationError("http.events_kept", kept, "must be a whole number from 10 to 10000")
    return HttpSettings(host, port, admin, viewer, cert, key, kept)
