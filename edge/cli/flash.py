"""Put the edge core on a MicroPython board with mpremote.

Copies edge/core and the board's micropython-lib packages, and optionally a
JSON board configuration as edge_config.json. With --meter MODEL --unit N
--node-id ID --broker HOST the board becomes a meter node instead: it reads the
meters over RS-485 and publishes them to the gateway's broker (docs/meters.md,
"Meter nodes"). `--dry-run` prints the mpremote commands. Exit 2: unknown board, missing port, bad config; exit 1: a step failed
on the board (cable, port held by another program, no MicroPython).
"""
from host_tools.flash import configure, run  # noqa: F401  (the command is the tool)

HELP = "flash the edge core onto a MicroPython board"
