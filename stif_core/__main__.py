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
    train = sub.add_parser("train", help="train a model from a JSON config (configs/*.json)")
    train.add_argument("--config", required=True, help="a JSON file of TrainConfig fields")
    train.add_argument("--out", help="output folder (overrides the config's)")
    train.add_argument("--steps", type=int, help="number of steps (overrides the config's)")
    train.add_argument("--data-root", help="sequences folder (default: $STIF_DATA_ROOT or ../shared/data/sequences)")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import describe

        for preset in args.preset or ["lite", "paper"]:
            describe(preset)
    elif args.command == "train":
        from .train import TrainConfig, Trainer

        cfg = TrainConfig.load(args.config, out=args.out, steps=args.steps, data_root=args.data_root,
                               device=args.device)
        print(f"weights written to {Trainer(cfg).fit()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
