"""Tokens and drivers of the cloud's lists, validated fast and stored compactly.

100,000 tokens must validate in a fraction of a second on CPython and fit a
board's heap, so a token is a tuple (see the T_* indexes), the validation is
one flat function with no per-token string formatting unless it fails, and the
book's key is the upper-cased uid: OCPP idTags are case-insensitive
(CiString), so a wallbox that sends "04a1b2" must find "04A1B2". Uids are
ASCII: RFID UIDs, eMAIDs and contract ids all are, and Unicode case folding
differs between CPython and MicroPython (and maps e.g. U+FB00 onto "FF").
"""

from edge.core.checks import extra_fields, with_extra
from edge.core.errors import ValidationError

# T_EXTRA: the fields this version does not know (forward compatibility), or None.
T_UID, T_GROUPS, T_STATUS, T_EXPIRES, T_DRIVER, T_PROVIDER, T_EXTRA = 0, 1, 2, 3, 4, 5, 6
TOKEN_KEYS = ("uid", "groups", "status", "expires_s", "driver", "provider")
TOKEN_STATUSES = ("valid", "blocked")
MAX_UID_LEN = 36          # OCPP 2.0.1 IdToken.idToken; 1.6 idTags are at most 20
MAX_TOKEN_GROUPS = 16
MAX_PROVIDER_LEN = 64

D_ID, D_NAME, D_GROUP, D_EXTRA = 0, 1, 2, 3
DRIVER_KEYS = ("id", "name", "group")


def is_ascii(text):
    # UTF-8 length equals character count only for pure ASCII; cheap in C on both platforms.
    return len(text.encode()) == len(text)


def token_key(uid):
    key = uid.upper()
    # Most uids are already upper case: keep one string instead of two.
    return uid if key == uid else key


def _fail(where, i, sub, value, message):
    field = "%s[%d]%s" % (where, i, sub)
    raise ValidationError(field, value, message)


def parse_token(t, where, i, groups, drivers, shared=None):
    """Validate one token dict against the groups and drivers dicts -> token tuple.

    ``where``/``i`` only build the field path on failure (e.g. ``tokens[17].status``).
    ``shared`` (a dict) lets tokens with the same group list share one tuple,
    which saves memory when 100,000 tokens sit in a handful of groups.
    """
    if type(t) is not dict:
        _fail(where, i, "", t, "must be an object")
    extra = None
    if len(t) != 6 or not ("uid" in t and "groups" in t and "status" in t and "expires_s" in t
                           and "driver" in t and "provider" in t):
        extra = extra_fields(t, "%s[%d]" % (where, i), TOKEN_KEYS)
    uid = t.get("uid")
    if type(uid) is not str or not uid or len(uid) > MAX_UID_LEN or not is_ascii(uid) or uid.strip() != uid:
        _fail(where, i, ".uid", uid, "must be 1..%d ASCII characters without surrounding spaces" % MAX_UID_LEN)
    provider = t.get("provider")
    if provider is not None and (type(provider) is not str or not provider or len(provider) > MAX_PROVIDER_LEN):
        _fail(where, i, ".provider", provider, "must be null or a provider id of 1..%d characters" % MAX_PROVIDER_LEN)
    gl = t.get("groups")
    if type(gl) is not list and type(gl) is not tuple:
        _fail(where, i, ".groups", gl, "must be a list of group ids")
    n = len(gl)
    if n == 0 or n > MAX_TOKEN_GROUPS:
        _fail(where, i, ".groups", gl, "must list 1..%d groups" % MAX_TOKEN_GROUPS)
    for j in range(n):
        gid = gl[j]
        g = groups.get(gid) if type(gid) is str else None
        if g is None:
            _fail(where, i, ".groups[%d]" % j, gid, "unknown group")
        kind = g.kind
        if kind == "adhoc":
            _fail(where, i, ".groups[%d]" % j, gid, "an ad hoc group takes no tokens")
        if kind == "eroaming" and provider is None:
            _fail(where, i, ".provider", provider, "a token of the eRoaming group %s needs its provider" % gid)
    if n > 1 and len(set(gl)) != n:
        _fail(where, i, ".groups", gl, "a group is listed twice")
    status = t.get("status")
    if status != "valid" and status != "blocked":
        _fail(where, i, ".status", status, "must be valid or blocked")
    expires = t.get("expires_s")
    if expires is not None and (type(expires) is not int or expires < 0):
        _fail(where, i, ".expires_s", expires, "must be null or UTC seconds")
    driver = t.get("driver")
    if driver is not None and (type(driver) is not str or driver not in drivers):
        _fail(where, i, ".driver", driver, "unknown driver")
    gt = tuple(gl)
    if shared is not None:
        gt = shared.setdefault(gt, gt)
    return (uid, gt, status, expires, driver, provider, extra)


def token_to_dict(tok):
    return with_extra({"uid": tok[T_UID], "groups": list(tok[T_GROUPS]), "status": tok[T_STATUS],
                       "expires_s": tok[T_EXPIRES], "driver": tok[T_DRIVER],
                       "provider": tok[T_PROVIDER]}, tok[T_EXTRA])


def parse_driver(d, where, i, groups):
    if type(d) is not dict:
        _fail(where, i, "", d, "must be an object")
    extra = extra_fields(d, "%s[%d]" % (where, i), DRIVER_KEYS)
    did = d.get("id")
    if type(did) is not str or not did or len(did) > 64:
        _fail(where, i, ".id", did, "must be a text of 1..64 characters")
    name = d.get("name", "")
    if type(name) is not str or len(name) > 200:
        _fail(where, i, ".name", name, "must be a text of at most 200 characters")
    gid = d.get("group")
    g = groups.get(gid) if type(gid) is str else None
    if g is None:
        _fail(where, i, ".group", gid, "unknown group")
    if g.kind != "drivers":
        _fail(where, i, ".group", gid, "drivers belong to a Drivers & Vehicles group, not %s" % g.kind)
    return (did, name, gid, extra)


def driver_to_dict(d):
    return with_extra({"id": d[D_ID], "name": d[D_NAME], "group": d[D_GROUP]}, d[D_EXTRA])
