"""Development entry point of `edge validate` (edge/cli/validate.py)."""
import sys

from edge.cli import main as edge_main
from edge.cli.validate import summary, warnings  # noqa: F401  (older callers)


def main(argv: list[str] | None = None) -> int:
    return edge_main(["validate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
