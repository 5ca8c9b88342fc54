"""``python -m companion``: the command line.

    python -m companion assignments --out DIR [--solutions]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion",
                                     description="Mixed Models Companion tools")
    commands = parser.add_subparsers(dest="command", required=True)
    assign = commands.add_parser("assignments", help="write the exercises as notebooks")
    assign.add_argument("--out", type=Path, required=True, help="folder for the notebooks")
    assign.add_argument("--solutions", action="store_true",
                        help="the teacher's version, with the worked solutions")
    args = parser.parse_args(argv)
    if args.command == "assignments":
        from companion.assignments import write_assignments

        try:
            paths = write_assignments(args.out, solutions=args.solutions)
        except FileNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        kind = "with solutions" if args.solutions else "without solutions"
        print(f"wrote {len(paths)} notebooks {kind} to {args.out}:")
        for path in paths:
            print(f"  {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
