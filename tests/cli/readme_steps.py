"""The command blocks of README.md that tests run, found by their marker comment."""
from __future__ import annotations

import re

from .site_files import REPO


def block(marker: str) -> list[str]:
    """The lines of the fenced block right after ``<!-- marker: ... -->``."""
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- %s:[^>]*-->\s*```[a-z]*\n(.*?)```" % re.escape(marker), text, re.S)
    assert m, f"README.md has no block marked {marker}"
    return [line for line in m.group(1).splitlines() if line.strip()]


def edge_spans() -> list[tuple[str, str | None, list[str]]]:
    """(command, action, --options) for every `edge ...` the README shows, in code
    spans and code blocks alike."""
    text = (REPO / "README.md").read_text()
    spans = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    rest = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
    spans += re.findall(r"`([^`]+)`", rest)
    out = []
    for span in spans:
        for line in re.split(r"\n(?![ ]*--)", span.replace("\\\n", " ")):
            for m in re.finditer(r"(?:^|[\s/])edge ([a-z]+)(?: (export))?((?:(?!\bedge )[^\n])*)", line):
                out.append((m.group(1), m.group(2), re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", m.group(3))))
    return out
