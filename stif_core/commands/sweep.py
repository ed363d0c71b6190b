"""``python -m stif_core sweep``: Table 1's rows trained over seeds and tracked, every training and every
evaluation a task on Ray (a local Ray by default; a cluster with --address or $RAY_ADDRESS; docs/cluster.md)."""
from __future__ import annotations

from ..device import DEVICES

RESUME = ("each training's checkpoint and each evaluation's finished sequences are kept in --out: the same command "
          "resumes there")


def add_cluster_options(p) -> None:
    """--address, --no-ray and --jobs, shared by report and sweep."""
    from ..options import JOBS_BOUND, MAX_JOBS, positive_int

    p.add_argument("--address", help="a running Ray cluster (HOST:PORT, or auto); default: $RAY_ADDRESS, else a local "
                                     "Ray started for the run")
    p.add_argument("--no-ray", action="store_true", help="run the tasks in this machine's processes, without Ray")
    p.add_argument("--jobs", type=positive_int(MAX_JOBS, JOBS_BOUND), default=2,
                   help=f"CPUs of the local Ray (or processes at a time without it; at most {MAX_JOBS}: {JOBS_BOUND})")


def register(sub) -> None:
    from ..config import VARIANTS
    from ..options import MAX_SEED, MAX_STEPS, bounded_int, name_list, positive_int

    p = sub.add_parser("sweep", help="train Table 1's rows over seeds and track them, each run a task on Ray")
    p.add_argument("--config", help="the recipe of every row (default: the project's configs/lite.json)")
    p.add_argument("--variants", type=name_list(VARIANTS), default=VARIANTS,
                   help=f"comma-separated Table 1 rows (default all: {','.join(VARIANTS)})")
    p.add_argument("--seeds", type=bounded_int(1, 1000), default=3, help="training seeds a row, 0 to N-1 (default 3)")
    p.add_argument("--first-seed", type=bounded_int(0, MAX_SEED - 1000), default=0, help="the first seed (default 0)")
    p.add_argument("--steps", type=positive_int(MAX_STEPS), help="training steps (overrides the recipe's)")
    p.add_argument("--train-sequences", nargs="+", help="train on these sequences instead of the recipe's split")
    p.add_argument("--sequences", nargs="+", help="track these sequences (default: the val split)")
    p.add_argument("--frames", type=positive_int(MAX_STEPS), help="track the first N frames of each (default: all)")
    p.add_argument("--data-root", help="sequences folder (default: $STIF_DATA_ROOT or ../shared/data/sequences)")
    p.add_argument("--device", default="cpu", choices=DEVICES, help="each task's device (cuda: one GPU a task)")
    add_cluster_options(p)
    p.add_argument("--out", required=True, help="output folder: train/<row>_s<seed>/, eval/<row>_s<seed>/, "
                                                "table1.json (the gathered rows)")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..data.sequences import load_split, resolve_root
    from ..evaluation.compare import format_comparison
    from ..lab import table1
    from ..lab.sweep import sweep
    from ..paths import project_dir

    root = resolve_root(args.data_root)
    sequences = args.sequences or load_split("val", root)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    config = args.config or str(project_dir() / "configs" / "lite.json")
    rows = sweep(config, list(args.variants), seeds, args.out, sequences, args.steps, args.train_sequences,
                 args.frames, str(root), args.device, args.address, args.jobs, not args.no_ray)
    table = table1.with_seed_means(table1.variant_table(rows, ("auc", "ao")), rows)
    print(format_comparison(table, "baseline" if "baseline" in table.index else None, ("auc", "ao")))
    print(f"rows written to {args.out}/table1.json (notebook 10 shows them: papermill -p metrics <that file>)")
