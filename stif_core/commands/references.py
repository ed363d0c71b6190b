"""``python -m stif_core references``: the spread study behind nbval's tolerances (``make references``)."""
from __future__ import annotations

RESUME = ("the configurations finished before the stop, if any, are kept in --out: add --reuse to run only the others "
          "(a --widen or --restore run starts over)")


def register(sub) -> None:
    from ..options import JOBS_BOUND, MAX_JOBS, positive_int

    p = sub.add_parser("references", help="measure the spread of the notebooks' key numbers across CPU "
                                          "configurations and write nbval's tolerances")
    p.add_argument("--out", help="folder of the runs (default: runs/spread under $STIF_OUTPUT or the project folder)")
    p.add_argument("--configs", nargs="+", help="configurations (default: all; 'plain' is required)")
    p.add_argument("--jobs", type=positive_int(MAX_JOBS, JOBS_BOUND), default=2,
                   help=f"configurations run side by side (at most {MAX_JOBS}: {JOBS_BOUND})")
    p.add_argument("--store", action="store_true", help="also store the plain run's outputs in the notebooks")
    p.add_argument("--reuse", action="store_true", help="keep the complete runs in --out; run the others")
    p.add_argument("--notebooks", nargs="+", help="re-run only these notebooks (e.g. 02 08) inside complete runs")
    p.add_argument("--restore", nargs="+", help="only re-execute these notebooks under the stored references and "
                                                "store their outputs (no number may move)")
    p.add_argument("--widen", metavar="LABEL", help="run the suite (or --notebooks) here as it is and widen each key's "
                   "tolerance to 3x its distance from the stored value, this machine recorded as LABEL: for a CPU "
                   "whose instruction set the configurations cannot emulate (e.g. AVX-512)")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..files import check_name, output_folder, outside_data
    from ..lab import references
    from ..paths import default_data_root, output_root

    if args.widen is not None:
        check_name(args.widen, "--widen label")  # before the folder is touched
    study = [f"--{k}" for k in ("store", "reuse", "configs") if getattr(args, k)]
    if study and (args.widen is not None or args.restore):
        raise ValueError(f"{', '.join(study)} belong to the study; --widen and --restore run the notebooks of this "
                         "machine as it is: give them apart")
    args.out = args.out or str(output_root() / "runs" / "spread")
    if args.restore or args.notebooks:
        references.pick_notebooks(args.restore or args.notebooks)  # an unknown name, too
    if default_data_root() is not None:
        outside_data(args.out, default_data_root(), "--out")
    with output_folder(args.out, "references"):  # one study at a time, never among your files
        if args.restore:
            references.restore(args.restore, args.out)
        elif args.widen is not None:
            references.widen(args.widen, args.notebooks, args.out)
        else:
            references.run(args.out, args.configs, args.jobs, args.store, args.reuse, args.notebooks)
