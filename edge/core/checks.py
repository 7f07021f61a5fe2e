"""Small validators shared by the domain modules.

Each takes the value and the field path used in the error, and either returns
the (possibly converted) value or raises ValidationError. They are plain
functions so validating 100,000 tokens stays a flat loop with no allocation
beyond the result.
"""

from edge.core.errors import ValidationError


def is_ascii_letter(ch):
    # str.isalpha()/isdigit() accept any Unicode letter or digit on CPython but only
    # ASCII on MicroPython: the core must decide the same on both.
    return ("A" <= ch <= "Z") or ("a" <= ch <= "z")


def is_ascii_digit(ch):
    return "0" <= ch <= "9"


def need_dict(value, field):
    if not isinstance(value, dict):
        raise ValidationError(field, value, "must be an object")
    return value


def need_list(value, field):
    if not isinstance(value, (list, tuple)):
        raise ValidationError(field, value, "must be a list")
    return value


def need_str(value, field, max_len=200, allow_empty=False):
    if not isinstance(value, str):
        raise ValidationError(field, value, "must be a text")
    if not allow_empty and not value.strip():
        raise ValidationError(field, value, "must not be empty")
    if len(value) > max_len:
        raise ValidationError(field, value, "must be at most %d characters" % max_len)
    return value


def need_id(value, field, max_len=64):
    """An identifier: text without whitespace or control characters."""
    if not isinstance(value, str):
        raise ValidationError(field, value, "must be a text identifier")
    if not value:
        raise ValidationError(field, value, "must not be empty")
    if len(value) > max_len:
        raise ValidationError(field, value, "must be at most %d characters" % max_len)
    for ch in value:
        if ch <= " " or ch == "\x7f":
            raise ValidationError(field, value, "must not contain spaces or control characters")
    return value


def need_bool(value, field):
    if value is not True and value is not False:
        raise ValidationError(field, value, "must be true or false")
    return value


def need_int(value, field, lo=None, hi=None):
    # bool is an int subclass in Python: a JSON `true` must not pass as 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(field, value, "must be a whole number")
    if lo is not None and value < lo:
        raise ValidationError(field, value, "must be %d or more" % lo)
    if hi is not None and value > hi:
        raise ValidationError(field, value, "must be %d or less" % hi)
    return value


def need_opt_int(value, field, lo=None, hi=None):
    if value is None:
        return None
    return need_int(value, field, lo, hi)


def need_choice(value, field, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValidationError(field, value, "must be one of " + ", ".join(choices))
    return value


def no_unknown_keys(d, field, allowed):
    """Refuse keys we do not know: a typo in a config file must not be silently ignored."""
    for key in d:
        if key not in allowed:
            where = field + "." + str(key) if field else str(key)
            raise ValidationError(where, d[key], "unknown field")


MAX_EXTRA_KEYS = 32


def extra_fields(d, field, known):
    """The fields of ``d`` this version does not know, kept as a dict (None when none).

    The cloud protocol is forward compatible inside a schema version: a newer cloud
    may add optional fields to a group, driver or token (an account id, a flag for its
    own use), and an edge that refused them would break on every such change. They
    are carried along unread, so a snapshot written back out still holds them. Keys
    must be texts; at most MAX_EXTRA_KEYS per item bounds what one item can carry.
    """
    extra = None
    for key in d:
        if key in known:
            continue
        if type(key) is not str or not key:
            raise ValidationError(field, key, "field names must be texts")
        if extra is None:
            extra = {}
        extra[key] = d[key]
    if extra is not None and len(extra) > MAX_EXTRA_KEYS:
        raise ValidationError(field, len(extra), "more than %d unknown fields" % MAX_EXTRA_KEYS)
    return extra


def with_extra(d, extra):
    """``d`` with the unknown fields of ``extra`` added back (known fields win)."""
    if extra:
        for key in extra:
            if key not in d:
                d[key] = extra[key]
    return d


def amps_to_da(value, field, lo_da=0, hi_da=None):
    """Amps as written in a config file (int or decimal) -> integer deciamps.

    Rounds half up on the decimal text, so 6.05 A becomes 61 dA even though the
    binary float is slightly below 6.05.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, value, "must be a number of amperes")
    if isinstance(value, int):
        da = value * 10
    else:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(field, value, "must be a finite number of amperes")
        da = _decimal_tenths_half_up(value)
    if da < lo_da:
        raise ValidationError(field, value, "must be %s A or more" % _da_text(lo_da))
    if hi_da is not None and da > hi_da:
        raise ValidationError(field, value, "must be %s A or less" % _da_text(hi_da))
    return da


def _da_text(da):
    return "%d.%d" % (da // 10, da % 10) if da % 10 else "%d" % (da // 10)


def _decimal_tenths_half_up(x):
    negative = x < 0
    if negative:
        x = -x
    text = repr(x)
    if "e" in text or "E" in text:
        # Very large or tiny numbers: plain arithmetic is exact enough there.
        tenths = int(x * 10 + 0.5)
    else:
        parts = text.split(".")
        whole = parts[0]
        frac = (parts[1] if len(parts) > 1 else "") + "00"
        tenths = int(whole) * 10 + int(frac[0])
        if frac[1] >= "5":
            tenths += 1
    return -tenths if negative else tenths


def need_items(d, key, field, max_items):
    """An optional list inside ``d`` (missing or null = empty), at most ``max_items`` long."""
    value = d.get(key)
    if value is None:
        return []
    need_list(value, field)
    if len(value) > max_items:
        raise ValidationError(field, len(value), "at most %d items" % max_items)
    return value
