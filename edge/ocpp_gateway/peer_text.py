"""Text that came from a wallbox, made safe for the edge's log.

A CallError description, a vendor name or an idTag is whatever the peer sent: it may
hold newlines (a forged log line), control characters or a whole payload. It reaches
the log only quoted (``repr``: escapes included) and cut to a sane length.
"""
from __future__ import annotations

import asyncio
from typing import Any

from ocpp.exceptions import OCPPError

MAX_CHARS = 80


def quote(text: Any, limit: int = MAX_CHARS) -> str:
    s = str(text)
    if len(s) > limit:
        return repr(s[:limit]) + "...(%d chars)" % len(s)
    return repr(s)


def describe(exc: BaseException) -> str:
    """One line naming what failed: a CallError's code and (quoted) description, a
    timeout, a closed connection, or else the exception's type."""
    if isinstance(exc, OCPPError):
        desc = getattr(exc, "description", None)
        return "CallError %s%s" % (exc.code, " " + quote(desc) if desc else "")
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    name = type(exc).__name__
    if name == "LinkClosed":
        return "connection closed"
    return name


def permanent_refusal(exc: BaseException) -> bool:
    """A CallError saying the wallbox cannot do this at all (not: not now)."""
    return isinstance(exc, OCPPError) and exc.code in ("NotImplemented", "NotSupported")
