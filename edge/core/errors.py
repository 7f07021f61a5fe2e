"""Errors raised by the domain core when an input is wrong.

Every message names the field (a dotted/indexed path such as
``groups[3].tariff.energy_m_per_kwh``) and the value that was refused, so a
support person can find the mistake in a config file or a cloud payload.
"""

_MAX_VALUE_TEXT = 120


def _value_text(value):
    # repr() shows strings quoted, so an empty or blank value is visible.
    # Hostile payloads can be huge: the message stays short.
    try:
        text = repr(value)
    except Exception:
        text = "<unprintable>"
    if len(text) > _MAX_VALUE_TEXT:
        text = text[:_MAX_VALUE_TEXT - 3] + "..."
    return text


class ValidationError(ValueError):
    """An input was refused. ``str()`` reads ``"<field>: <message> (got <value>)"``."""

    def __init__(self, field, value, message):
        self.field = field
        self.value = value
        self.message = message
        super().__init__("%s: %s (got %s)" % (field, message, _value_text(value)))

    def __str__(self):
        return "%s: %s (got %s)" % (self.field, self.message, _value_text(self.value))


class VersionMismatch(ValidationError):
    """A delta's ``base_version`` is not the version of the book it was applied to."""

    def __init__(self, field, value, message, current_version=None):
        super().__init__(field, value, message)
        self.current_version = current_version


class GroupArchived(ValidationError):
    """A change to an archived group other than its name (archived is final; a group
    that is needed again is created anew)."""
