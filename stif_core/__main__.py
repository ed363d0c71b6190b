"""Command line: ``python -m stif_core {demo,...}``."""
from __future__ import annotations

import argparse
import sys
import traceback

from .data.sequences import LAYOUTS


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def main(argv: list[str] | None = None) -> int:
    """Parse and run one command. A user-facing error (bad input, a missing file, a misfit) prints one line and
    exits with 2; ``--verbose`` shows its traceback too."""
    parser = argparse.ArgumentParser(prog="python -m stif_core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build the model and print its parts and internals' shapes")
    demo.add_argument("--preset", action="append", choices=["lite", "paper"],
                      help="preset(s) to describe (default: both)")
    train = sub.add_parser("train", help="train a model from a JSON config (configs/*.json)")
    train.add_argument("--config", required=True, help="a JSON file of TrainConfig fields")
    train.add_argument("--out", help="output folder (overrides the config's)")
    train.add_argument("--variant", help="the Table 1 row to train (overrides the config's): baseline, ste, sde_q, "
                                         "stif, ste+sde_q, full")
    train.add_argument("--seed", type=int, help="training seed (overrides the config's)")
    train.add_argument("--steps", type=positive_int, help="number of steps (overrides the config's)")
    train.add_argument("--data-root", help="sequences folder (default: $STIF_DATA_ROOT or ../shared/data/sequences)")
    train.add_argument("--stop-at", type=positive_int,
                       help="stop at this step (a time budget; the schedule is unchanged)")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"])
    ev = sub.add_parser("eval", help="track a dataset's sequences and write metrics.json")
    ev.add_argument("--data-root", help="dataset folder (default: $STIF_DATA_ROOT or ../shared/data/sequences)")
    ev.add_argument("--layout", default="otb", choices=LAYOUTS,
                    help="the data root's layout: otb (this project's, with splits.json beside it), got10k, "
                         "lasot, trackingnet, or auto (detected)")
    ev.add_argument("--sequences", nargs="+", help="sequence names (default: every sequence found)")
    ev.add_argument("--split", help="otb: a split of splits.json, e.g. val; got10k: train/val/test; "
                                    "lasot: a class; trackingnet: train/test or a chunk (TRAIN_3)")
    ev.add_argument("--checkpoint", action="append", default=[],
                    help="STIF weights: a .safetensors file or a shipped model's name (stif_lite_full); repeatable")
    ev.add_argument("--baselines", default="", help="comma-separated OpenCV peers, e.g. csrt,kcf")
    ev.add_argument("--params", default="otb", help="tracker hyper-parameter set: otb or got10k")
    ev.add_argument("--memory-policy", help="recent (the paper's adjacent frames) or stmtrack; default: the tracker's "
                                               "(stif_core.tracking.tracker.DEFAULT_MEMORY_POLICY)")
    ev.add_argument("--engine", default="torch", choices=["torch", "onnx"],
                    help="where STIF's network runs: PyTorch, or ONNX Runtime (faster on a CPU; lite models)")
    ev.add_argument("--search-size", type=positive_int,
                    help="STIF's crop side in pixels at the training scale (default: the model's, 161 for lite); "
                         "smaller searches a smaller region for less work, e.g. 129 (the model's crop +- 16k)")
    ev.add_argument("--knockouts", default="",
                    help="also track each checkpoint with one part switched off, a row per knock-out: comma-separated "
                         "names (temporal_uniform, spatial_one, spatial_mean, no_q2m, no_m2q, gate_half, "
                         "mask_empty) or all")
    ev.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ev.add_argument("--out", required=True, help="output folder (never inside the data root)")
    ev.add_argument("--results-only", action="store_true",
                    help="track and write the result files without scoring them: for a split whose ground truth is "
                         "withheld (GOT-10k test, TrackingNet TEST), to submit to the benchmark's server")
    cmp = sub.add_parser("compare", help="an eval run's trackers with bootstrap intervals over sequences, and "
                                         "paired differences against a reference row")
    cmp.add_argument("--metrics", required=True, help="metrics.json of an eval run")
    cmp.add_argument("--reference", help="the row every other row is compared with, e.g. stif-baseline")
    cmp.add_argument("--keys", default="auc,ao", help="comma-separated scores (auc, ao, sr50, sr75, prec20)")
    bench = sub.add_parser("bench", help="print speed and memory figures")
    bench.add_argument("--data-root")
    bench.add_argument("--checkpoint", help="lite weights to time (default: the untrained lite network)")
    bench.add_argument("--frames", type=positive_int, default=100, help="frames tracked per speed figure")
    bench.add_argument("--rounds", type=positive_int, default=3,
                       help="interleaved rounds per speed figure (the median is printed; default 3)")
    bench.add_argument("--search-size", type=positive_int,
                       help="the fast lite row's search crop in pixels (default 129; see eval --search-size)")
    bench.add_argument("--json", help="also write the figures to this JSON file")
    bench.add_argument("--profile", action="store_true", help="also print where a lite frame's time goes")
    bench.add_argument("--training", metavar="CONFIG",
                       help="only print where a training step of this config's recipe goes (decode, samples, trunk)")
    rep = sub.add_parser("report", help="run the notebook suite and the ablation batch through papermill")
    rep.add_argument("--out", default="reports", help="output folder (default: reports/)")
    rep.add_argument("--full", action="store_true", help="whole sequences and full budgets instead of fast mode")
    rep.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    rep.add_argument("--data-root", default="", help="sequences folder")
    rep.add_argument("--variants", nargs="+",
                     help="ablation variants (default: the Table 1 rows with a shipped model; all six with --train)")
    rep.add_argument("--jobs", type=positive_int, default=2, help="notebooks run at a time (one CPU thread each)")
    rep.add_argument("--train", action="store_true",
                     help="retrain every variant with its recipe before evaluating it (hours on a CPU)")
    rep.add_argument("--train-steps", type=positive_int, help="with --train: steps instead of the recipe's")
    rep.add_argument("--no-knockouts", action="store_true", help="skip the knock-outs of the full model")
    rep.add_argument("--ablation-clips", action="store_true",
                     help="track the first 100 frames of each val sequence in the ablation (a smoke test)")
    health = sub.add_parser("health", help="measure a model's internals on real frames: saturated maps, "
                                           "one-hot attention, pinned temporal weights, peaks off the target")
    health.add_argument("--checkpoint", default="stif_lite_full", help="weights: a file or a shipped model's name")
    health.add_argument("--split", default="val", help="a split of splits.json (default: val)")
    health.add_argument("--data-root", help="sequences folder")
    health.add_argument("--samples", type=positive_int, default=8, help="samples per sequence")
    ref = sub.add_parser("references", help="measure the spread of the notebooks' key numbers across CPU "
                                            "configurations and write nbval's tolerances")
    ref.add_argument("--out", default="runs/spread", help="folder of the runs (default: runs/spread)")
    ref.add_argument("--configs", nargs="+", help="configurations (default: all; 'plain' is required)")
    ref.add_argument("--jobs", type=positive_int, default=2, help="configurations run side by side")
    ref.add_argument("--store", action="store_true", help="also store the plain run's outputs in the notebooks")
    ref.add_argument("--reuse", action="store_true", help="keep the complete runs in --out; run the others")
    ref.add_argument("--notebooks", nargs="+", help="re-run only these notebooks (e.g. 02 08) inside complete runs")
    ref.add_argument("--restore", nargs="+", help="only re-execute these notebooks under the stored references "
                                                  "and store their outputs (no number may move)")
    ref.add_argument("--widen", metavar="LABEL", help="run the suite (or --notebooks) here as it is and widen each "
                     "key's tolerance to 3x its distance from the stored value, this machine recorded as LABEL: "
                     "for a CPU whose instruction set the configurations cannot emulate (e.g. AVX-512)")
    args = parser.parse_args(argv)
    try:
        run(args)
    except KeyboardInterrupt:
        if args.verbose:
            traceback.print_exc()
        print(f"interrupted: {args.command} stopped; {RESUME.get(args.command, 'nothing was written')}",
              file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:  # bad input, a file or folder that cannot be used: one clear line
        if args.verbose:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


RESUME = {  # what an interrupted command keeps, and how to go on
    "eval": "the sequences tracked so far are kept in --out: the same command resumes there",
    "train": "the last checkpoint (every checkpoint_every steps) is kept in the output folder: the same command "
             "resumes from it",
    "report": "the notebooks executed so far are kept in --out; the same command runs the batch again",
    "references": "the configurations run so far are kept in --out: add --reuse to run only the others",
}


def run(args: argparse.Namespace) -> None:
    if args.command == "demo":
        from .demo import describe

        for preset in args.preset or ["lite", "paper"]:
            describe(preset)
    elif args.command == "train":
        from .train import TrainConfig, Trainer

        cfg = TrainConfig.load(args.config, out=args.out, steps=args.steps, data_root=args.data_root,
                               device=args.device, variant=args.variant, seed=args.seed)
        print(f"weights written to {Trainer(cfg).fit(stop_at=args.stop_at)}")
    elif args.command == "eval":
        from .evaluation.cli import run_eval

        run_eval(args)
    elif args.command == "compare":
        from .evaluation.compare import comparison, format_comparison
        from .evaluation.results import read_metrics

        keys = tuple(k for k in args.keys.split(",") if k)
        unknown = sorted(set(keys) - {"auc", "ao", "sr50", "sr75", "prec20"})
        if unknown:
            raise ValueError(f"unknown score(s) {unknown}; valid: auc, ao, sr50, sr75, prec20")
        table = comparison(read_metrics(args.metrics), args.reference, keys)
        print(format_comparison(table, args.reference, keys))
    elif args.command == "bench":
        if args.training:
            from .bench import print_training_profile, training_profile
            from .machine import conditions

            machine = conditions()
            print_training_profile(args.training, training_profile(args.training), machine)
        else:
            from .bench import run

            run(args.data_root, args.checkpoint, args.frames, json_path=args.json, profile=args.profile,
                rounds=args.rounds, search_size=args.search_size)
    elif args.command == "report":
        from .report import run as run_report

        run_report(args.out, not args.full, args.device, args.data_root, args.variants, args.train, args.train_steps,
                   not args.no_knockouts, args.ablation_clips, args.jobs)
    elif args.command == "health":
        from .checkpoint import load_model
        from .data.sequences import load_sequences, load_split
        from .health import format_report, report

        sequences = load_sequences(load_split(args.split, args.data_root), args.data_root)
        print(format_report(report(load_model(args.checkpoint), sequences, args.samples)))
    elif args.command == "references":
        from .references import run as run_references

        if args.restore:
            from .references import restore

            restore(args.restore, args.out)
        elif args.widen is not None:
            from .references import widen

            widen(args.widen, args.notebooks, args.out)
        else:
            run_references(args.out, args.configs, args.jobs, args.store, args.reuse, args.notebooks)


if __name__ == "__main__":
    sys.exit(main())
