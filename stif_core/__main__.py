"""Command line: ``python -m stif_core {demo,...}``."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stif_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build the model and print its parts and internals' shapes")
    demo.add_argument("--preset", action="append", choices=["lite", "paper"],
                      help="preset(s) to describe (default: both)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import describe

        for preset in args.preset or ["lite", "paper"]:
            describe(preset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
