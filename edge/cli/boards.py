"""List the supported boards (one data file each, shipped in the package) and check
their files. Exit 2 names a broken board file."""
from host_tools.boards import configure, run  # noqa: F401  (the command is the tool)

HELP = "list the supported boards"
