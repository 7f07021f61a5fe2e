"""Development entry point of `edge init` (edge/cli/init.py): python -m host_tools.provision ..."""
import sys

from edge.cli import main as edge_main
from edge.cli.init import build, parse_meter, parse_station  # noqa: F401  (older callers)


def main(argv: list[str] | None = None) -> int:
    return edge_main(["init", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
