"""Show what a running edge sees, read from its local API (docs/local-api.md).

    edge status site.toml                         # address and TLS from its [http] section
    edge status --url https://192.0.2.7:8080 --cafile ca.crt
    EDGE_PASSWORD=... edge status site.toml --json

The grid per phase (measured, building load, cars, limit, headroom), the external
cap, the allocation mode, cloud link and outbox, every connector with its card
(masked), group, current given and drawn and why it gets that, and the latest
events. Logs in as --user (default viewer) with the password from --password-file,
the EDGE_PASSWORD environment variable, or a prompt. Exit 0 when read, 2 when the
login is refused or an argument is wrong, 1 when the edge cannot be reached.
"""
from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any

from edge.cli._exit import BAD_INPUT, FAILURE, Abort

HELP = "show the site as the running edge sees it (from its local API)"


def configure(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("config", nargs="?", help="site file: the API address and TLS come from its [http] section")
    ap.add_argument("--url", help="the API's base URL instead, e.g. https://192.0.2.7:8080")
    ap.add_argument("--user", default="viewer", choices=["viewer", "admin"], help="login (default viewer)")
    ap.add_argument("--password-file", help="file whose first line is the password (else EDGE_PASSWORD or a prompt)")
    ap.add_argument("--cafile", help="certificate(s) to trust for HTTPS (default: the site file's tls_cert, "
                                     "else the system's)")
    ap.add_argument("--json", action="store_true", help="print the API's answers as JSON")
    ap.add_argument("--events", type=int, default=5, help="recent events to show (default 5, 0 for none)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the edge (default 10)")


def _target(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.url:
        if not args.url.startswith(("http://", "https://")):
            raise Abort("--url: must start with http:// or https:// (got %r)" % args.url[:80])
        return args.url.rstrip("/"), args.cafile
    if not args.config:
        raise Abort("name the site file or give --url")
    from edge.cli._config import load
    cfg = load(args.config)
    if cfg.http is None:
        raise Abort("%s: has no [http] section: the local API is off (docs/local-api.md)" % args.config)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(cfg.http.host, cfg.http.host)
    if ":" in host:
        host = "[%s]" % host
    scheme = "https" if cfg.http.tls_cert else "http"
    return "%s://%s:%d" % (scheme, host, cfg.http.port), args.cafile or cfg.http.tls_cert


def _password(args: argparse.Namespace) -> str:
    if args.password_file:
        try:
            with open(args.password_file, encoding="utf-8") as f:
                return f.readline().rstrip("\r\n")
        except OSError as exc:
            raise Abort("--password-file: cannot be read: %s" % exc.strerror) from None
    pw = os.environ.get("EDGE_PASSWORD")
    if pw is not None:
        return pw
    if not sys.stdin.isatty():
        raise Abort("no password: use --password-file, EDGE_PASSWORD or a terminal")
    return getpass.getpass("password for %s: " % args.user)


def _context(cafile: str | None) -> ssl.SSLContext:
    try:
        ctx = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise Abort("cannot read the certificate to trust (%s): %s" % (cafile, exc)) from None
    # A self-signed site certificate given as the one to trust is enough on its own.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx


class Client:
    def __init__(self, base: str, user: str, password: str, cafile: str | None, timeout: float) -> None:
        self.base = base
        self.auth = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode("utf-8")).decode()
        self.ctx = _context(cafile) if base.startswith("https://") else None
        self.timeout = timeout

    def get(self, path: str) -> Any:
        req = urllib.request.Request(self.base + path, headers={"Authorization": self.auth,
                                                                "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.ctx) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise Abort("%s refused the login (HTTP %d): check --user and the password" % (self.base, exc.code),
                            BAD_INPUT) from None
            raise Abort("%s answered HTTP %d for %s" % (self.base, exc.code, path), FAILURE) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            why = getattr(exc, "reason", exc)
            raise Abort("cannot read %s: %s (is the edge running with [http] on?)" % (self.base, str(why)[:200]),
                        FAILURE) from None


def render(st: dict, conns: list[dict], events: list[dict]) -> list[str]:
    from edge import status_text
    lines = [status_text.headline(st)]
    if st["allocation"]["notes"]:
        lines.extend(("  input refused: %s" % n)[:status_text.WIDTH] for n in st["allocation"]["notes"][:3])
    lines.extend(status_text.phase_lines(st))
    lines.append("")
    lines.extend(status_text.connector_lines(conns, st["now_s"]))
    lines.append("")
    lines.extend(status_text.wrap(status_text.LEGEND))
    if events:
        lines.append("")
        lines.append("recent events:")
        for e in events:
            detail = " ".join("%s=%s" % (k, e[k]) for k in ("station", "connector", "status", "mode", "reason",
                                                             "energy_wh", "online", "max_da") if e.get(k) is not None)
            lines.append(("  %s %s %s" % (_clock(e["at_s"]), e["kind"], detail))[:status_text.WIDTH])
    return lines


def _clock(t: int) -> str:
    import time
    return time.strftime("%H:%M:%S", time.localtime(t))


def run(args: argparse.Namespace) -> int:
    if args.events < 0 or args.events > 500:
        raise Abort("--events: must be 0 to 500 (got %d)" % args.events)
    base, cafile = _target(args)
    client = Client(base, args.user, _password(args), cafile, args.timeout)
    st = client.get("/api/v1/status")
    conns = client.get("/api/v1/connectors")["connectors"]
    events = client.get("/api/v1/events?limit=%d" % args.events)["events"] if args.events else []
    if args.json:
        print(json.dumps({"status": st, "connectors": conns, "events": events}, indent=2))
    else:
        print("\n".join(render(st, conns, events)))
    return 0
