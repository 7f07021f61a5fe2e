"""POSIX TZ rule strings -> UTC offset for any instant.

A board has no time-zone database; the site's zone is configured as a POSIX TZ
rule, e.g. Germany ``CET-1CEST,M3.5.0,M10.5.0/3``. Grammar (POSIX.1-2017 8.3,
plus the common extension of transition times from -167 to 167 hours):

    std offset [dst [offset] [,start[/time],end[/time]]]

Names are 3 or more letters or ``<...>`` quoted (``<+03>``). Offsets are hours
WEST of Greenwich (so ``CET-1`` is UTC+1). A DST name without an offset means
one hour ahead of standard time. Rules: ``Jn`` (1..365, Feb 29 never counted),
``n`` (0..365, Feb 29 counted), ``Mm.w.d`` (month, week 1..5 where 5 is the
last, weekday 0 = Sunday). Transition times default to 02:00 local time; the
start is in standard time, the end in daylight time. A DST name without rules
is refused (POSIX leaves that to the implementation).
"""

from edge.core.civil import DAY_S, days_from_civil, days_in_month, is_leap, civil_from_days
from edge.core.checks import is_ascii_digit, is_ascii_letter
from edge.core.errors import ValidationError


class TzRule:
    """A parsed rule. ``offset_s(utc_s)`` is the UTC offset (east positive) in force."""

    def __init__(self, text, std_name, std_off_s, dst_name=None, dst_off_s=None,
                 start=None, end=None):
        self.text = text
        self.std_name = std_name
        self.std_off_s = std_off_s
        self.dst_name = dst_name
        self.dst_off_s = dst_off_s
        self.start = start  # (kind, a, b, c, time_s)
        self.end = end
        self._cache_year = None
        self._cache = None

    def __repr__(self):
        return "TzRule(%r)" % self.text

    def __eq__(self, other):
        return isinstance(other, TzRule) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def transitions(self, year):
        """(dst_start_utc_s, dst_end_utc_s) for the given year, or None without DST."""
        if self.dst_name is None:
            return None
        if year != self._cache_year:
            start_local = _rule_day(self.start, year) * DAY_S + self.start[4]
            end_local = _rule_day(self.end, year) * DAY_S + self.end[4]
            self._cache = (start_local - self.std_off_s, end_local - self.dst_off_s)
            self._cache_year = year
        return self._cache

    def is_dst(self, utc_s):
        if self.dst_name is None:
            return False
        utc_s = int(utc_s)
        year = civil_from_days((utc_s + self.std_off_s) // DAY_S)[0]
        start, end = self.transitions(year)
        if start < end:
            return start <= utc_s < end
        # Southern hemisphere: daylight time spans the new year.
        return not (end <= utc_s < start)

    def offset_s(self, utc_s):
        return self.dst_off_s if self.is_dst(utc_s) else self.std_off_s

    def to_local(self, utc_s):
        """Local wall-clock seconds (as if local time were UTC) for a UTC instant."""
        utc_s = int(utc_s)
        return utc_s + self.offset_s(utc_s)


def _rule_day(rule, year):
    kind, a, b, c = rule[0], rule[1], rule[2], rule[3]
    jan1 = days_from_civil(year, 1, 1)
    if kind == "J":
        # Julian day 1..365 without Feb 29: days after Feb 28 shift in leap years.
        return jan1 + a - 1 + (1 if is_leap(year) and a >= 60 else 0)
    if kind == "n":
        return jan1 + a
    month, week, wday = a, b, c
    first = days_from_civil(year, month, 1)
    first_wday = (first + 4) % 7  # POSIX counts 0 = Sunday; 1970-01-01 was Thursday (4)
    day = first + (wday - first_wday) % 7 + 7 * (week - 1)
    last = first + days_in_month(year, month) - 1
    while day > last:
        day -= 7
    return day


class _Reader:
    def __init__(self, text, field):
        self.text = text
        self.pos = 0
        self.field = field

    def fail(self, message):
        raise ValidationError(self.field, self.text, "%s at position %d" % (message, self.pos))

    def peek(self):
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self, ch):
        if self.peek() == ch:
            self.pos += 1
            return True
        return False

    def name(self):
        if self.take("<"):
            start = self.pos
            while self.peek() and self.peek() != ">":
                ch = self.peek()
                if not (is_ascii_letter(ch) or is_ascii_digit(ch) or ch in "+-"):
                    self.fail("invalid character in quoted zone name")
                self.pos += 1
            if not self.take(">"):
                self.fail("quoted zone name is not closed")
            value = self.text[start:self.pos - 1]
        else:
            start = self.pos
            while self.peek() and is_ascii_letter(self.peek()):
                self.pos += 1
            value = self.text[start:self.pos]
        if len(value) < 3:
            self.fail("zone name must have at least 3 characters")
        return value

    def number(self, max_digits):
        start = self.pos
        while self.peek() and is_ascii_digit(self.peek()) and self.pos - start < max_digits:
            self.pos += 1
        if self.pos == start:
            self.fail("number expected")
        return int(self.text[start:self.pos])

    def hms(self, max_hours):
        sign = 1
        if self.take("-"):
            sign = -1
        else:
            self.take("+")
        hours = self.number(3)
        minutes = seconds = 0
        if self.take(":"):
            minutes = self.number(2)
            if self.take(":"):
                seconds = self.number(2)
        if hours > max_hours or minutes > 59 or seconds > 59:
            self.fail("time out of range")
        return sign * (hours * 3600 + minutes * 60 + seconds)

    def date_rule(self):
        if self.take("J"):
            n = self.number(3)
            if not 1 <= n <= 365:
                self.fail("Julian day must be 1..365")
            rule = ["J", n, 0, 0]
        elif self.take("M"):
            month = self.number(2)
            if not self.take("."):
                self.fail("'.' expected in M rule")
            week = self.number(1)
            if not self.take("."):
                self.fail("'.' expected in M rule")
            wday = self.number(1)
            if not (1 <= month <= 12 and 1 <= week <= 5 and 0 <= wday <= 6):
                self.fail("M rule needs month 1..12, week 1..5, weekday 0..6")
            rule = ["M", month, week, wday]
        else:
            n = self.number(3)
            if n > 365:
                self.fail("zero-based day must be 0..365")
            rule = ["n", n, 0, 0]
        time_s = 7200
        if self.take("/"):
            time_s = self.hms(167)
        return (rule[0], rule[1], rule[2], rule[3], time_s)


def parse_tz(text, field="timezone"):
    """Parse a POSIX TZ rule; raises ValidationError naming ``field``."""
    if not isinstance(text, str) or not text:
        raise ValidationError(field, text, "must be a POSIX TZ rule such as CET-1CEST,M3.5.0,M10.5.0/3")
    if len(text) > 100:
        raise ValidationError(field, text, "is too long for a POSIX TZ rule")
    if text in ("UTC", "GMT"):
        return TzRule(text, text, 0)
    r = _Reader(text, field)
    std_name = r.name()
    if not r.peek():
        r.fail("standard offset expected after the zone name")
    std_off = -r.hms(24)
    if not r.peek():
        return TzRule(text, std_name, std_off)
    dst_name = r.name()
    dst_off = std_off + 3600
    if r.peek() and r.peek() != ",":
        dst_off = -r.hms(24)
    if not r.take(","):
        r.fail("DST rules ',start[/time],end[/time]' are required")
    start = r.date_rule()
    if not r.take(","):
        r.fail("',' expected before the DST end rule")
    end = r.date_rule()
    if r.peek():
        r.fail("unexpected text")
    return TzRule(text, std_name, std_off, dst_name, dst_off, start, end)
