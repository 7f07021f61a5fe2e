"""Who may do what on the local API: HTTP basic login as ``admin`` or ``viewer``.

Reading (GET, HEAD) needs either login; anything that changes the site needs
``admin``: a viewer gets 403, no login 401 (with the browser's login prompt).
Passwords are checked against the scrypt hashes of the site file off the event
loop (a check takes tens of milliseconds by design), at most two at a time, and
a good login is remembered for a few minutes by a digest of what was sent, so a
live page does not cost one scrypt per request.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time
from typing import Awaitable, Callable

from aiohttp import web

from edge.web.passwords import verify_password
from edge.web.settings import HttpSettings

log = logging.getLogger(__name__)

ADMIN = "admin"
VIEWER = "viewer"
_REMEMBER_S = 300
_REMEMBERED_MAX = 64
_READ_METHODS = ("GET", "HEAD")
ROLE = web.RequestKey("role", str)    # request[ROLE]: who is logged in


class Authenticator:
    def __init__(self, settings: HttpSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._hashes = {ADMIN: settings.admin_hash}
        if settings.viewer_hash is not None:
            self._hashes[VIEWER] = settings.viewer_hash
        self._clock = clock
        self._good: dict[bytes, tuple[str, float]] = {}    # digest of the credentials -> role, until
        self._checks = asyncio.Semaphore(2)
        self.failures = 0

    async def role(self, header: str | None) -> str | None:
        """The role the Authorization header logs in as, None when it does not."""
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        stored = self._hashes.get(user)
        if stored is None:
            return None
        digest = hashlib.sha256(("%s\0%s\0%s" % (user, password, stored)).encode("utf-8", "surrogatepass")).digest()
        now = self._clock()
        known = self._good.get(digest)
        if known is not None and known[1] > now:
            return known[0]
        async with self._checks:
            ok = await asyncio.to_thread(verify_password, password, stored)
        if not ok:
            self.failures += 1
            # Once per burst, not per attempt: a scanner must not flood the log.
            if self.failures in (1, 10, 100, 1000):
                log.warning("local API: %d failed login(s) so far (user %r)", self.failures, user[:32])
            return None
        if len(self._good) >= _REMEMBERED_MAX:
            self._good.clear()
        self._good[digest] = (user, now + _REMEMBER_S)
        return user


def middleware(auth: Authenticator, open_paths: tuple[str, ...] = ()) -> Callable:
    @web.middleware
    async def check(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        if request.path in open_paths:
            return await handler(request)
        role = await auth.role(request.headers.get("Authorization"))
        if role is None:
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="edge", charset="UTF-8"'},
                                       text="login needed (user admin or viewer)\n")
        if request.method not in _READ_METHODS and role != ADMIN:
            raise web.HTTPForbidden(text="this needs the admin login\n")
        request[ROLE] = role
        return await handler(request)
    return check
