"""Loading the site file for a command: a wrong file is one line naming the file and the field."""
from __future__ import annotations

from edge.cli._exit import Abort
from edge.core.errors import ValidationError


def load(path: str):
    from edge import config
    try:
        return config.load(path)
    except ValidationError as exc:
        raise Abort(f"{path}: {exc}") from None
