"""``python -m stif_core cache``: the frozen trunk's features of one seed's training samples, read by every Table 1
row of that seed (``train --feature-cache``)."""
from __future__ import annotations

RESUME = ("the samples encoded before the stop, if any, are kept in the cache folder: the same command resumes "
          "from them")


def register(sub) -> None:
    from ..options import MAX_SEED, MAX_STEPS, bounded_int, positive_int

    p = sub.add_parser("cache", help="encode one seed's training samples once with the frozen trunk, for every "
                                     "Table 1 row (train --feature-cache)")
    p.add_argument("--config", required=True, help="a JSON file of TrainConfig fields (configs/lite.json)")
    p.add_argument("--seed", type=bounded_int(0, MAX_SEED),
                   help=f"training seed (overrides the config's; 0 to {MAX_SEED})")
    p.add_argument("--out", help="cache folder (default: runs/cache/seed<N>)")
    p.add_argument("--steps", type=positive_int(MAX_STEPS),
                   help=f"number of steps (overrides the config's; at most {MAX_STEPS})")
    p.add_argument("--data-root", help="sequences folder (default: $STIF_DATA_ROOT or ../shared/data/sequences)")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..train import TrainConfig, build_feature_cache

    cfg = TrainConfig.load(args.config, steps=args.steps, data_root=args.data_root, seed=args.seed)
    out = build_feature_cache(cfg, args.out or f"runs/cache/seed{cfg.seed}")
    given = "".join(f" --{k.replace('_', '-')} {v}" for k, v in (("steps", args.steps), ("data_root", args.data_root))
                    if v is not None)  # what made these samples besides the config
    print(f"feature cache written to {out}; train any row of seed {cfg.seed} with: python -m stif_core train "
          f"--config {args.config} --variant ROW --seed {cfg.seed}{given} --feature-cache {out}")
