"""The `edge` command: one entry point for installers, with a subcommand per job.

Each subcommand is one module in this package (``run.py`` is ``edge run``, ...);
modules whose name starts with ``_`` are helpers, not commands. A command module has
a docstring (its ``--help`` description), ``HELP`` (one line for ``edge --help``),
``configure(parser)`` (adds its arguments) and ``run(args) -> int``. They are found
here by name, so adding a command touches no other file (docs/architecture.md,
"Adding a subcommand").

Exit codes scripts can rely on (edge.cli._exit): 0 ok, 2 bad input (arguments,
configuration file, missing or unreadable files, taken ports), 1 a runtime failure.
``edge CONFIG`` is short for ``edge run CONFIG``.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType

from edge.cli._exit import BAD_INPUT, FAILURE, Abort
from edge.core.errors import ValidationError

# The order `edge --help` lists them in; commands not named here follow alphabetically.
ORDER = ("run", "init", "validate", "install", "status", "simulate", "sessions", "history",
         "flash", "boards")


def commands() -> dict[str, ModuleType]:
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    return {name: importlib.import_module(f"{__name__}.{name}") for name in names}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="edge", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Edge controller for EV charging sites.",
        epilog="`edge CONFIG` is short for `edge run CONFIG`. `edge COMMAND --help` explains a command.\n"
               "Exit codes: 0 ok, 2 bad input (arguments, configuration, files, ports), 1 runtime failure.")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, mod in commands().items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.configure(p)
        if p.get_default("func") is None and hasattr(mod, "run"):
            p.set_defaults(func=mod.run)      # a command with actions has no run() of its own
        p.set_defaults(_parser=p)
    return ap


def _shorthand(argv: list[str], known: set[str]) -> list[str]:
    """`edge site.toml ...` -> `edge run site.toml ...`; only for what looks like a file,
    so a mistyped command still gets argparse's "invalid choice" with the list."""
    if argv and argv[0] not in known and not argv[0].startswith("-") \
            and ("." in argv[0] or "/" in argv[0]):
        return ["run", *argv]
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser()
    args = ap.parse_args(_shorthand(argv, set(commands())))
    if getattr(args, "func", None) is None:
        # `edge` alone, or `edge sessions` without its action: show what there is.
        (getattr(args, "_parser", None) or ap).print_help(sys.stderr)
        return BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except Abort as exc:
        for line in exc.lines:
            print(f"error: {line}", file=sys.stderr)
        return exc.code
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:          # `edge sessions export | head`
        return 0
    except Exception:
        import traceback
        traceback.print_exc()
        print("error: unexpected failure (a bug: please report it with the lines above)", file=sys.stderr)
        return FAILURE
