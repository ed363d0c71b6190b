"""``python -m stif_core crossval``: training recipes compared by cross-validation over a split's sequences, so that
a recipe is chosen without tracking the reporting split: each recipe trained on all folds but one (seed fixed) and
tracked on the held-out fold, every fold's scores pooled per sequence and paired against the first recipe. Each
run's checkpoint is still chosen by its loss on the recipe's val_split (val, for the shipped recipe): a loss, not
tracking, and the same rule for every recipe."""
from __future__ import annotations

from ..device import DEVICES

RESUME = "each fold's trainings and tracking are kept in --out: the same command resumes there"


def register(sub) -> None:
    from ..options import MAX_SEED, MAX_STEPS, bounded_int, positive_int

    p = sub.add_parser("crossval", help="compare training recipes by cross-validation over the train split's "
                                        "sequences (train on K-1 folds, track the held-out one)")
    p.add_argument("--config", action="append", required=True,
                   help="a training config (a recipe), named by its file's stem; repeatable; the first is the "
                        "reference the others are paired with")
    p.add_argument("--folds", type=bounded_int(2, 1000), default=4, help="K, the number of folds (default 4)")
    p.add_argument("--fold", type=bounded_int(0, 999), action="append",
                   help="run only this fold (repeatable; default: every fold); the pooled table covers the folds run")
    p.add_argument("--split", default="train", help="the split whose sequences are dealt into folds (default train)")
    p.add_argument("--steps", type=positive_int(MAX_STEPS), help="training steps (overrides the configs')")
    p.add_argument("--seed", type=bounded_int(0, MAX_SEED), default=0, help="training seed (default 0)")
    p.add_argument("--baselines", default="csrt,nanotrack", help="OpenCV peers tracked on each fold too")
    p.add_argument("--data-root", help="sequences folder (default: $STIF_DATA_ROOT or ../shared/data/sequences)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--out", required=True, help="output folder: <recipe>_f<i>/ (training), eval_f<i>/ (tracking), "
                                                "crossval.json (the pooled rows)")
    p.set_defaults(run=run)


def run(args) -> None:
    import json
    import re
    from pathlib import Path

    from ..data.sequences import resolve_root
    from ..device import resolve_device
    from ..evaluation.compare import comparison, format_comparison
    from ..evaluation.harness import evaluate
    from ..evaluation.results import pooled_rows, read_metrics
    from ..evaluation.trackers import baseline_trackers, dataset_sequences, stif_trackers
    from ..files import output_folder, outside_data, write_text
    from ..tracking.memory import DEFAULT_MEMORY_POLICY
    from ..train import Trainer

    labels = [Path(c).stem for c in args.config]
    baselines = [b for b in args.baselines.split(",") if b]
    if (len(set(labels)) < len(labels) or set(labels) & {*baselines, "eval"}
            or not all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_+-]*", label) for label in labels)):
        raise ValueError(f"--config: recipes are named by their files' stems, which must be plain names (letters, "
                         f"digits, _+-), differ from each other, from the baselines and from 'eval': {labels}")
    baseline_trackers(baselines)  # an unknown name fails here, before any folder is made
    folds = sorted(set(args.fold or range(args.folds)))
    if folds[-1] >= args.folds:
        raise ValueError(f"--fold {folds[-1]}: folds are numbered 0 to {args.folds - 1}")
    root = resolve_root(args.data_root)
    device = resolve_device(args.device).type
    recipes = {i: {label: fold_config(config, args, i, root) for label, config in zip(labels, args.config)}
               for i in folds}  # every recipe checked for every fold before any work
    with output_folder(outside_data(args.out, root, "--out"), "crossval") as out:
        for i, configs in recipes.items():
            trackers, signatures = baseline_trackers(baselines)
            for label, cfg in configs.items():
                cfg.out = str(out / f"{label}_f{i}")
                print(f"fold {i} of {args.folds}, {label}: training on {cfg.split} -> {cfg.out}")
                trainer = Trainer(cfg)
                trainer.fit()
                engine = "onnx" if device == "cpu" else "torch"  # ONNX Runtime runs on the CPU
                factories, setups = stif_trackers([str(trainer.selected)], "otb", DEFAULT_MEMORY_POLICY, device, engine)
                (row,) = factories
                trackers[label], signatures[label] = factories[row], setups[row]
            held = dataset_sequences(root, "otb", f"{args.split}:fold-{i}-of-{args.folds}", None)
            evaluate(trackers, held, out / f"eval_f{i}", signatures=signatures)
        runs = [read_metrics(out / f"eval_f{i}" / "metrics.json") for i in folds]
        rows = pooled_rows([{n: r for n, r in run.items() if n in [*labels, *baselines]} for run in runs])
        write_text(out / "crossval.json", json.dumps(rows, indent=1))
    print(f"folds {folds} of {args.folds}, pooled over their held-out sequences:")
    print(format_comparison(comparison(rows, labels[0], ("auc",)), labels[0], ("auc",)))
    print(f"pooled rows written to {out / 'crossval.json'} (python -m stif_core compare --metrics reads it)")


def fold_config(path: str, args, fold: int, root):
    """Recipe ``path`` trained on every fold of the split but ``fold``: refused when the recipe names its own
    sequences or another split, selects no checkpoint (no validation), or selects it on sequences of the held-out
    fold."""
    from ..data.sequences import load_split
    from ..train import TrainConfig

    own = TrainConfig.load(path, data_root=str(root)).split
    if own != args.split:  # its folds are dealt from --split
        raise ValueError(f"--config {path}: the recipe trains on split {own!r}, and crossval deals the sequences of "
                         f"--split {args.split!r} into folds; give --split {own} (or remove the recipe's 'split')")
    cfg = TrainConfig.load(path, split=f"{args.split}:except-fold-{fold}-of-{args.folds}", seed=args.seed,
                           steps=args.steps, data_root=str(root), device=args.device)
    if cfg.sequences is not None or cfg.synthetic:  # they would override the fold's split
        raise ValueError(f"--config {path}: a recipe for crossval trains on the folds it is given; remove its "
                         "'sequences' (or 'synthetic')")
    if not cfg.val_split or cfg.val_samples == 0:
        raise ValueError(f"--config {path}: crossval tracks each run's checkpoint chosen by its val loss; give the "
                         "recipe a val_split and val_samples")
    held = set(load_split(f"{args.split}:fold-{fold}-of-{args.folds}", root))
    shared = sorted(held & set(load_split(cfg.val_split, root)))
    if shared:
        raise ValueError(f"--config {path}: its val_split {cfg.val_split!r} shares {shared[:3]} with held-out fold "
                         f"{fold}: the checkpoint would be chosen on the sequences it is scored on")
    return cfg
