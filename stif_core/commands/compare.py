"""``python -m stif_core compare``: an eval run's rows with bootstrap intervals and paired differences."""
from __future__ import annotations

RESUME = "nothing was written"
SCORES = ("auc", "ao", "sr50", "sr75", "prec20")


def register(sub) -> None:
    from ..options import name_list

    p = sub.add_parser("compare", help="an eval run's trackers with bootstrap intervals over sequences, and paired "
                                       "differences against a reference row; rows scored differently (one pass, "
                                       "eval --starts K) are compared apart")
    p.add_argument("--metrics", required=True, help="metrics.json of an eval run")
    p.add_argument("--reference", help="the row every other row is compared with, e.g. stif-baseline")
    p.add_argument("--keys", default="auc,ao", type=name_list(SCORES),
                   help=f"comma-separated scores ({', '.join(SCORES)})")
    p.add_argument("--seeds", action="store_true",
                   help="rows that differ only in checkpoint and training seed (their checkpoints record seed and "
                        "recipe) become one row: mean and bootstrap over seeds and sequences, the seeds' spread")
    p.add_argument("--shape", action="store_true", help="also the boxes' shape on the frames each tracker holds: "
                                                        "aspect and centre errors (reads the run's result files and "
                                                        "the sequences; a TRE row: the frames of a sequence's "
                                                        "starts pooled)")
    p.add_argument("--data-root", help="sequences folder, for --shape (default: $STIF_DATA_ROOT or "
                                       "../shared/data/sequences)")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..evaluation.compare import comparisons, format_comparison
    from ..evaluation.results import read_metrics

    keys = args.keys
    rows = read_metrics(args.metrics)
    tables = comparisons(rows, args.reference, keys, seeds=args.seeds)
    for i, (kind, table) in enumerate(tables.items()):
        reference = table.attrs["reference"]
        if len(tables) > 1:  # rows scored differently are compared apart
            print("\n" * (i > 0) + f"rows scored {kind}" + (f", not compared with {args.reference} (scored otherwise)"
                                                            if args.reference is not None and reference is None
                                                            else "") + ":")
        print(format_comparison(table, reference, keys))
    if args.shape:
        from pathlib import Path

        from ..data.sequences import load_sequences
        from ..evaluation.shape import format_shape, shape_table

        names = list(dict.fromkeys(s for r in rows.values() for s in r["per_sequence"]))
        sequences = load_sequences(names, args.data_root)
        print(format_shape(shape_table(Path(args.metrics).parent, rows, sequences)))
