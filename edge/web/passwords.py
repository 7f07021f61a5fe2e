"""Password hashes for the site file: scrypt from hashlib, checked in constant time.

The site file holds only ``scrypt$<log2 n>$<r>$<p>$<salt hex>$<hash hex>``; make one with
``python -m edge.web.passwords`` (asks twice, prints the line to paste). scrypt is
memory-hard on purpose, so checking costs tens of milliseconds: the web server runs
it off the event loop and remembers a good check for a while (edge.web.auth).
"""
from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import sys

from edge.core.errors import ValidationError

_LOG2_N = 14          # n = 16384, r = 8: 16 MiB per check, fine on a Raspberry Pi
_R = 8
_P = 1
_DKLEN = 32
_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str, *, log2_n: int = _LOG2_N, salt: bytes | None = None) -> str:
    if not password:
        raise ValidationError("password", "", "must not be empty")
    salt = salt if salt is not None else os.urandom(16)
    dk = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=1 << log2_n, r=_R, p=_P,
                        maxmem=_MAXMEM, dklen=_DKLEN)
    return "scrypt$%d$%d$%d$%s$%s" % (log2_n, _R, _P, salt.hex(), dk.hex())


def parse_hash(text: object, field: str) -> tuple[int, int, int, bytes, bytes]:
    """The parts of a stored hash; a ValidationError naming ``field`` when malformed."""
    parts = text.split("$") if isinstance(text, str) else []
    try:
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError
        log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, dk = bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
        if not (10 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16 and len(salt) >= 8 and len(dk) >= 16):
            raise ValueError
        if 128 * r * (1 << log2_n) > _MAXMEM // 2:
            raise ValueError
    except ValueError:
        raise ValidationError(field, "<hidden>", "must be a hash made by `python -m edge.web.passwords` "
                                                 "(scrypt$n$r$p$salt$hash), never the password itself") from None
    return log2_n, r, p, salt, dk


def verify_password(password: str, stored: str) -> bool:
    log2_n, r, p, salt, dk = parse_hash(stored, "password_hash")
    got = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=1 << log2_n, r=r, p=p,
                         maxmem=_MAXMEM, dklen=len(dk))
    return hmac.compare_digest(got, dk)


def main() -> int:
    first = getpass.getpass("new password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if sys.stdin.isatty() and getpass.getpass("again: ") != first:
        print("the two passwords differ", file=sys.stderr)
        return 1
    if len(first) < 10:
        print("use at least 10 characters", file=sys.stderr)
        return 1
    print(hash_password(first))
    return 0


if __name__ == "__main__":
    sys.exit(main())
