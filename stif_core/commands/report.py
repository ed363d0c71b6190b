"""``python -m stif_core report``: the notebook suite and the ablation batch through papermill (``make report``)."""
from __future__ import annotations

from ..device import DEVICES

RESUME = ("the notebooks executed so far are kept in --out (tasks.json): the same command runs only the others, "
          "while no notebook, code or data changed")


def register(sub) -> None:
    from ..options import MAX_STARTS, MAX_STEPS, positive_int
    from .sweep import add_cluster_options

    p = sub.add_parser("report", help="run the notebook suite and the ablation batch through papermill, each "
                                        "notebook a task on Ray (local by default)")
    p.add_argument("--out", default="reports", help="output folder (default: reports/)")
    p.add_argument("--full", action="store_true",
                   help="whole sequences and full budgets instead of fast mode (whose ablation tracks the first 100 "
                        "frames of each val sequence)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--data-root", default="", help="sequences folder")
    p.add_argument("--variants", nargs="+",
                   help="ablation variants (default: the Table 1 rows with a shipped model; all six with --train)")
    p.add_argument("--train", action="store_true",
                   help="retrain every variant with its recipe before evaluating it (hours on a CPU)")
    p.add_argument("--train-steps", type=positive_int(MAX_STEPS),
                   help=f"with --train: steps instead of the recipe's (at most {MAX_STEPS})")
    p.add_argument("--no-knockouts", action="store_true", help="skip the knock-outs of the full model")
    p.add_argument("--starts", type=positive_int(MAX_STARTS), default=1,
                   help="starts per val sequence in the ablation (OTB's temporal robustness evaluation; "
                        f"default 1, the stored Table 1 used 3; at most {MAX_STARTS})")
    add_cluster_options(p)
    p.set_defaults(run=run)


def run(args) -> None:
    from ..lab.report import run as report

    if args.train_steps and not args.train:
        raise ValueError("--train-steps sets the steps of --train's trainings; without --train the shipped models run")
    report(args.out, not args.full, args.device, args.data_root, args.variants, args.train, args.train_steps,
           not args.no_knockouts, args.jobs, args.starts, args.address, not args.no_ray)
