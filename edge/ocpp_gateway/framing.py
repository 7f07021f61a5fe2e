"""Strict OCPP-J frame checks, done before the ocpp library sees a frame.

The library stays silent on frames that are not a JSON array, uses 2.0.1 error names
on 1.6 connections and swaps NotImplemented/NotSupported, so every request frame is
checked here first and answered with the CallError the specification names:

- OCPP-J 1.6 section 4.2.3 / 2.0.1 part 4 section 4.3: ``NotImplemented`` = action not
  known, ``NotSupported`` = known but not supported by this receiver.
- A frame whose message id cannot be read is answered with message id ``"-1"``
  (``RpcFrameworkError`` in 2.0.1; 1.6 has no such code, ``FormationViolation`` there).
- Schema failures: type -> TypeConstraintViolation; enum/pattern/range/length ->
  PropertyConstraintViolation; missing required field -> OccurrenceConstraintViolation
  (1.6 spells it ``OccurenceConstraintViolation``); anything else -> Formation/Format
  Violation.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaError
from ocpp.messages import get_validator
from ocpp.v16.enums import Action as Action16
from ocpp.v201.enums import Action as Action201

V16 = "1.6"
V201 = "2.0.1"

SUBPROTOCOLS = {"ocpp1.6": V16, "ocpp2.0.1": V201}

_ACTIONS = {V16: {a.value for a in Action16}, V201: {a.value for a in Action201}}

# Error code names per version where the two specifications differ.
_CODES = {
    V16: {"format": "FormationViolation", "occurrence": "OccurenceConstraintViolation",
          "rpc": "FormationViolation", "msgtype": "FormationViolation"},
    V201: {"format": "FormatViolation", "occurrence": "OccurrenceConstraintViolation",
           "rpc": "RpcFrameworkError", "msgtype": "MessageTypeNotSupported"},
}

_PROPERTY_VALIDATORS = {"enum", "pattern", "maxLength", "minLength", "maximum", "minimum",
                        "exclusiveMaximum", "exclusiveMinimum", "format", "multipleOf"}
_OCCURRENCE_VALIDATORS = {"required", "minItems", "maxItems", "uniqueItems"}

# The ocpp library logs every frame at INFO, and every CallError it receives at WARNING
# with the peer's text verbatim. The gateway logs each failed call itself, once, with
# that text quoted and cut (peer_text.py), so the library's lines would only repeat it
# unquoted. Wire traces are opt-in: they appear only when this logger is set to INFO
# (or WARNING for the library's CallError lines) explicitly.
WIRE_LOG = logging.getLogger("edge.ocpp_gateway.wire")
if WIRE_LOG.level == logging.NOTSET:
    WIRE_LOG.setLevel(logging.ERROR)


class _StoreRefusalsSaidByTheStore(logging.Filter):
    """A handler failed because the store refused a write (disk full): the library would
    log a traceback, with the wallbox's payload unquoted, for every such message; the
    store says it once per incident (edge/store/sessions.py) and the wallbox gets its
    InternalError all the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, sqlite3.Error)


WIRE_LOG.addFilter(_StoreRefusalsSaidByTheStore())

MAX_ID_LEN = 36  # OCPP-J: message id is at most 36 characters


@dataclass
class Frame:
    kind: str            # "call", "result", "error"
    unique_id: str
    action: str | None = None
    payload: Any = None


class FrameError(Exception):
    """A request that must be answered with a CallError (``reply`` is the frame text)."""

    def __init__(self, unique_id: str, code: str, description: str, details: dict | None = None):
        super().__init__(f"{code}: {description}")
        self.unique_id = unique_id
        self.code = code
        self.description = description
        self.details = details or {}

    @property
    def reply(self) -> str:
        return call_error(self.unique_id, self.code, self.description, self.details)


def call_error(unique_id: str, code: str, description: str, details: dict | None = None) -> str:
    # OCPP limits errorDescription to 255 characters.
    return json.dumps([4, unique_id, code, description[:255], details or {}],
                      separators=(",", ":"))


def parse(raw: str | bytes, version: str) -> Frame:
    """Parse one frame; raises FrameError for anything that deserves a CallError.

    CallResult/CallError frames that are malformed are returned as kind "junk"
    (a response is never answered, only logged).
    """
    codes = _CODES[version]
    if isinstance(raw, bytes):
        # OCPP-J uses text frames only.
        raise FrameError("-1", codes["rpc"], "binary frames are not OCPP-J")
    try:
        msg = json.loads(raw)
    except ValueError:
        raise FrameError("-1", codes["rpc"], "frame is not valid JSON") from None
    if not isinstance(msg, list) or not msg:
        raise FrameError("-1", codes["rpc"], "frame is not a JSON array")
    if len(msg) < 2 or not isinstance(msg[1], str) or not msg[1] or len(msg[1]) > MAX_ID_LEN:
        raise FrameError("-1", codes["rpc"], "message id missing or not a string of 1..36")
    uid = msg[1]
    mtype = msg[0]
    if mtype == 2:
        if len(msg) != 4:
            raise FrameError(uid, codes["format"], "CALL must have 4 elements, got %d" % len(msg))
        action, payload = msg[2], msg[3]
        if not isinstance(action, str):
            raise FrameError(uid, codes["format"], "action is not a string")
        if not isinstance(payload, dict):
            raise FrameError(uid, codes["format"], "payload is not a JSON object")
        bad = _bad_number(payload, "")
        if bad is not None:
            raise FrameError(uid, "PropertyConstraintViolation",
                             "%s: number out of range or not finite" % (bad or "(payload)"),
                             {"field": bad or "(payload)"})
        return Frame("call", uid, action, payload)
    if mtype == 3:
        if len(msg) != 3:
            return Frame("junk", uid)
        return Frame("result", uid, None, msg[2])
    if mtype == 4:
        if len(msg) != 5:
            return Frame("junk", uid)
        return Frame("error", uid, None, msg[2:])
    raise FrameError(uid, codes["msgtype"], "message type %r is not 2, 3 or 4" % (mtype,))


# Python's json accepts NaN/Infinity and integers of any size; neither belongs in OCPP
# and a 10**30 meter reading would only fail later, in SQLite, as an InternalError.
MAX_ABS_NUMBER = 2 ** 53


def _bad_number(value: Any, path: str) -> str | None:
    """Path of the first non-finite or out-of-range number, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if value != value or not -MAX_ABS_NUMBER <= value <= MAX_ABS_NUMBER:
            return path
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            found = _bad_number(v, "%s.%s" % (path, k) if path else str(k))
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _bad_number(v, "%s[%d]" % (path, i))
            if found is not None:
                return found
    return None


def is_known_action(action: str, version: str) -> bool:
    return action in _ACTIONS[version]


def check_schema(frame: Frame, version: str) -> None:
    """Validate a CALL payload against the official schema; raise FrameError naming the field."""
    validator = get_validator(2, frame.action, version)
    errors = sorted(validator.iter_errors(frame.payload), key=lambda e: list(e.path))
    if not errors:
        return
    err = errors[0]
    codes = _CODES[version]
    raise FrameError(frame.unique_id, _code_for(err, codes), _describe(err),
                     {"field": _field_path(err)})


def _code_for(err: SchemaError, codes: dict) -> str:
    if err.validator == "type":
        return "TypeConstraintViolation"
    if err.validator in _PROPERTY_VALIDATORS:
        return "PropertyConstraintViolation"
    if err.validator in _OCCURRENCE_VALIDATORS:
        return codes["occurrence"]
    return codes["format"]


def _field_path(err: SchemaError) -> str:
    path = ""
    for p in err.path:
        path += "[%d]" % p if isinstance(p, int) else ("." + p if path else p)
    if err.validator == "required":
        # The missing property is in the message, not in the path.
        missing = err.message.split("'")[1] if "'" in err.message else "?"
        path = (path + "." if path else "") + missing
    return path or "(payload)"


def _describe(err: SchemaError) -> str:
    return "%s: %s" % (_field_path(err), err.message)
