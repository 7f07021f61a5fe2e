"""Exit codes of the `edge` command, and the exception that ends a command with one."""
from __future__ import annotations

OK = 0
FAILURE = 1       # something went wrong while running: a peer, the disk, a board
BAD_INPUT = 2     # the caller can fix it: arguments, configuration, files, ports


class Abort(Exception):
    """Ends a command: each line is printed as ``error: <line>``, then exit ``code``."""

    def __init__(self, lines: str | list[str], code: int = BAD_INPUT) -> None:
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        self.code = code
        super().__init__("; ".join(self.lines))
