"""``python -m stif_core health``: a model's internals measured on real frames, each against its bound."""
from __future__ import annotations

RESUME = "nothing was written"


def register(sub) -> None:
    from ..options import positive_int

    p = sub.add_parser("health", help="measure a model's internals on real frames: saturated maps, one-hot "
                                      "attention, pinned temporal weights, peaks off the target")
    p.add_argument("--checkpoint", default="stif_lite_full", help="weights: a file or a shipped model's name")
    p.add_argument("--split", default="val", help="a split of splits.json (default: val)")
    p.add_argument("--data-root", help="sequences folder")
    p.add_argument("--samples", type=positive_int(1000), default=8, help="samples per sequence (at most 1000)")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..checkpoint import load_model
    from ..data.sequences import load_sequences, load_split
    from ..lab.health import format_report, report

    sequences = load_sequences(load_split(args.split, args.data_root), args.data_root)
    print(format_report(report(load_model(args.checkpoint), sequences, args.samples)))
