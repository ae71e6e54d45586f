"""`hetang-agent`: the branch-venue agent's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

VERSION = "0.1.0"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hetang-agent` console script."""
    parser = argparse.ArgumentParser(prog="hetang-agent", description="Hetang venue agent")
    parser.add_argument("--version", action="version", version=f"hetang-agent {VERSION}")
    parser.parse_args(argv)
    print(
        "hetang-agent: check-ins and the schedule are not available in this version yet",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
