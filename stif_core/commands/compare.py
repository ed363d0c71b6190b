"""``python -m stif_core compare``: an eval run's rows with bootstrap intervals and paired differences."""
from __future__ import annotations

RESUME = "nothing was written"
SCORES = ("auc", "ao", "sr50", "sr75", "prec20")


def register(sub) -> None:
    p = sub.add_parser("compare", help="an eval run's trackers with bootstrap intervals over sequences, and paired "
                                       "differences against a reference row")
    p.add_argument("--metrics", required=True, help="metrics.json of an eval run")
    p.add_argument("--reference", help="the row every other row is compared with, e.g. stif-baseline")
    p.add_argument("--keys", default="auc,ao", help=f"comma-separated scores ({', '.join(SCORES)})")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..evaluation.compare import comparison, format_comparison
    from ..evaluation.results import read_metrics

    keys = tuple(k for k in args.keys.split(",") if k)
    unknown = sorted(set(keys) - set(SCORES))
    if unknown:
        raise ValueError(f"unknown score(s) {unknown}; valid: {', '.join(SCORES)}")
    print(format_comparison(comparison(read_metrics(args.metrics), args.reference, keys), args.reference, keys))
