"""`python -m hamtune.report ARGS` is `hamtune report ARGS`: the same parser, the same error handling.

The one import that runs up a floor (to the command line); the command itself is report/command.py.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from hamtune.cli import main as hamtune_main

    return hamtune_main(["report", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
