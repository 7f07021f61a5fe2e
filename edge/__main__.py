"""`python -m edge ...`: the same as the `edge` command (edge/cli)."""
import sys

from edge.cli import main

if __name__ == "__main__":
    sys.exit(main())
