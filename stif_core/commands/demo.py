"""``python -m stif_core demo``: the model's parts, parameters and a module-by-module shape trace."""
from __future__ import annotations

RESUME = "nothing was written"


def register(sub) -> None:
    p = sub.add_parser("demo", help="build the model and print its parts and internals' shapes")
    p.add_argument("--preset", action="append", choices=["lite", "paper"], help="preset(s) to describe (default: both)")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..lab.demo import describe

    for preset in args.preset or ["lite", "paper"]:
        describe(preset)
