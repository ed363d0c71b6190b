"""``python -m stif_core bench``: speed and memory figures, or where a training step's time goes."""
from __future__ import annotations

RESUME = "nothing was written"


def register(sub) -> None:
    from ..config import MAX_CROP_SIZE
    from ..options import MAX_STEPS, bounded_int, positive_int

    p = sub.add_parser("bench", help="print speed and memory figures")
    p.add_argument("--data-root")
    p.add_argument("--checkpoint", help="weights to time (default: the untrained networks)")
    p.add_argument("--frames", type=positive_int(MAX_STEPS), default=100,
                   help=f"frames tracked per speed figure (at most {MAX_STEPS}; the paper network on a CPU a fifth "
                        "of them, at least 10 where that many are asked); the memory curve tracks 15 times as many "
                        "(at most the whole sequence)")
    p.add_argument("--rounds", type=positive_int(100), default=3,
                   help="interleaved rounds per speed figure (the median is printed; default 3, at most 100)")
    p.add_argument("--search-size", type=bounded_int(1, MAX_CROP_SIZE),
                   help=f"the fast lite row's search crop in pixels (default 129; see eval --search-size; at most "
                        f"{MAX_CROP_SIZE})")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--profile", action="store_true", help="also print where a lite frame's time goes")
    p.add_argument("--training", metavar="CONFIG",
                   help="only print where a training step of this config's recipe goes (decode, samples, trunk)")
    p.set_defaults(run=run)


def run(args) -> None:
    if args.training and args.json:
        raise ValueError("--json writes the speed report; --training prints where a training step's time goes only")
    if args.training:
        from ..lab.bench import print_training_profile, training_profile
        from ..machine import conditions

        machine = conditions()
        print_training_profile(args.training, training_profile(args.training, data_root=args.data_root), machine)
    else:
        from ..lab.bench import run as bench

        bench(args.data_root, args.checkpoint, args.frames, json_path=args.json, profile=args.profile,
              rounds=args.rounds, search_size=args.search_size)
