"""``python -m stif_core train``: a training run from a JSON config (``configs/lite.json``)."""
from __future__ import annotations

from ..device import DEVICES

RESUME = ("the last checkpoint (one every checkpoint_every steps) is kept in the output folder: the same command "
          "resumes from it, or starts over when the run stopped before its first")


def register(sub) -> None:
    from ..options import MAX_SEED, MAX_STEPS, bounded_int, positive_int

    p = sub.add_parser("train", help="train a model from a JSON config (configs/*.json)")
    p.add_argument("--config", required=True, help="a JSON file of TrainConfig fields")
    p.add_argument("--variant", help="the Table 1 row to train (overrides the config's): baseline, ste, sde_q, stif, "
                                     "ste+sde_q, full")
    p.add_argument("--seed", type=bounded_int(0, MAX_SEED),
                   help=f"training seed (overrides the config's; 0 to {MAX_SEED})")
    p.add_argument("--out", help="output folder (overrides the config's)")
    p.add_argument("--steps", type=positive_int(MAX_STEPS),
                   help=f"number of steps (overrides the config's; at most {MAX_STEPS})")
    p.add_argument("--split", help="the sequences to train on (overrides the config's): a split of splits.json, or "
                                   "a cross-validation fold's complement, e.g. train:except-fold-0-of-4")
    p.add_argument("--data-root", help="sequences folder (default: $STIF_DATA_ROOT or ../shared/data/sequences)")
    p.add_argument("--feature-cache", help="a folder of this seed's trunk features (python -m stif_core cache): the "
                                           "same training for the cost of the layers that learn")
    p.add_argument("--stop-at", type=positive_int(MAX_STEPS),
                   help=f"stop at this step (a time budget; the schedule is unchanged; at most {MAX_STEPS})")
    p.add_argument("--device", choices=DEVICES)
    p.set_defaults(run=run)


def run(args) -> None:
    from ..train import TrainConfig, Trainer

    cfg = TrainConfig.load(args.config, out=args.out, steps=args.steps, data_root=args.data_root, split=args.split,
                           device=args.device, variant=args.variant, seed=args.seed,
                           feature_cache=args.feature_cache)
    if args.split and cfg.sequences is not None:
        raise ValueError(f"--split {args.split}: {args.config} names its training sequences ('sequences'); give one "
                         "or the other")
    print(f"weights written to {Trainer(cfg).fit(stop_at=args.stop_at)}")
