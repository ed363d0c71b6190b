"""``python -m stif_core eval``: STIF checkpoints and OpenCV peers tracked in one harness and one run."""
from __future__ import annotations

from ..data.sequences import LAYOUTS
from ..device import DEVICES

RESUME = "the sequences finished before the stop, if any, are kept in --out: the same command resumes there"


def register(sub) -> None:
    from ..config import MAX_CROP_SIZE
    from ..options import MAX_STARTS, bounded_int, positive_int

    p = sub.add_parser("eval", help="track a dataset's sequences and write metrics.json")
    p.add_argument("--data-root", help="dataset folder (default: $STIF_DATA_ROOT or ../shared/data/sequences)")
    p.add_argument("--layout", default="otb", choices=LAYOUTS,
                   help="the data root's layout: otb (this project's, with splits.json beside it), got10k, lasot, "
                        "trackingnet, or auto (detected)")
    p.add_argument("--sequences", nargs="+", help="sequence names (default: every sequence found)")
    p.add_argument("--split", help="otb: a split of splits.json, e.g. val, or a cross-validation fold of one, "
                                   "train:fold-0-of-4; got10k: train/val/test; lasot: a class; "
                                   "trackingnet: train/test or a chunk (TRAIN_3)")
    p.add_argument("--checkpoint", action="append", default=[],
                   help="STIF weights: a .safetensors file or a shipped model's name (stif_lite_full); repeatable")
    p.add_argument("--baselines", default="", help="comma-separated OpenCV peers: csrt, kcf, nanotrack (NanoTrack v2), "
                                                   "vittrack (VitTrack); e.g. csrt,nanotrack")
    p.add_argument("--params", default="otb", help="tracker hyper-parameter set: otb or got10k")
    p.add_argument("--memory-policy", help="recent (the paper's adjacent frames) or stmtrack; default: the tracker's "
                                           "(stif_core.tracking.memory.DEFAULT_MEMORY_POLICY)")
    p.add_argument("--engine", default="torch", choices=["torch", "onnx"],
                   help="where STIF's network runs: PyTorch, or ONNX Runtime (faster on a CPU; lite models)")
    p.add_argument("--search-size", type=bounded_int(1, MAX_CROP_SIZE),
                   help="STIF's crop side in pixels at the training scale (default: the model's, 161 for lite); "
                        "smaller searches a smaller region for less work, e.g. 129 (the model's crop +- 16k; at "
                        f"most {MAX_CROP_SIZE}, and a size whose attention does not fit the memory is refused)")
    p.add_argument("--knockouts", default="",
                   help="also track each checkpoint with one part switched off, a row per knock-out: comma-separated "
                        "names (temporal_uniform, spatial_one, spatial_mean, no_q2m, no_m2q, gate_half, mask_empty) "
                        "or all")
    p.add_argument("--starts", type=positive_int(MAX_STARTS), default=1,
                   help="OTB's temporal robustness evaluation: track each sequence from up to this many starts "
                        "spread over it (ground-truth box at each), scored pooled per sequence; rows are named "
                        f"<tracker>-tre<starts> (default 1: one pass from the first frame; at most {MAX_STARTS})")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--out", required=True, help="output folder (never inside the data root)")
    p.add_argument("--results-only", action="store_true",
                   help="track and write the result files without scoring them: for a split whose ground truth is "
                        "withheld (GOT-10k test, TrackingNet TEST), to submit to the benchmark's server")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..data.sequences import resolve_root
    from ..device import resolve_device
    from ..evaluation.harness import evaluate, format_table
    from ..evaluation.trackers import baseline_trackers, dataset_sequences, stif_trackers, trained_on
    from ..files import outside_data
    from ..machine import conditions, describe
    from ..tracking.memory import DEFAULT_MEMORY_POLICY, MEMORY_POLICIES
    from ..tracking.selection import PARAM_SETS

    if args.split and args.sequences and args.layout == "otb":
        raise ValueError("give --split or --sequences, not both")
    baselines = [b for b in args.baselines.split(",") if b]
    if not args.checkpoint and not baselines:
        raise ValueError("nothing to evaluate: give --checkpoint and/or --baselines")
    if not args.checkpoint and (args.params != "otb" or args.memory_policy or args.knockouts
                                or args.search_size):
        raise ValueError("--params, --memory-policy, --search-size and --knockouts set STIF's tracker; they need a "
                         "--checkpoint")
    policy = args.memory_policy or DEFAULT_MEMORY_POLICY
    if args.params not in PARAM_SETS or policy not in MEMORY_POLICIES:
        raise ValueError(f"--params {args.params!r} / --memory-policy {args.memory_policy!r}: valid parameter sets "
                         f"{list(PARAM_SETS)}, memory policies {list(MEMORY_POLICIES)}")
    root = resolve_root(args.data_root)
    out = outside_data(args.out, root, "--out")
    sequences = dataset_sequences(root, args.layout, args.split, args.sequences)
    device = resolve_device(args.device).type
    factories, signatures = stif_trackers(args.checkpoint, args.params, policy, device, args.engine,
                                          args.knockouts, args.search_size)
    peers, peer_signatures = baseline_trackers(baselines)
    for line in trained_on(args.checkpoint, sequences):
        print(line)
    machine = conditions()  # the load before this run's own work
    report = evaluate(factories | peers, sequences, out, signatures=signatures | peer_signatures,
                      score=not args.results_only, starts=args.starts)
    if args.results_only:
        print(f"result files written to {out}/<tracker>/got10k (the evaluation servers' layout) and otb/; "
              "nothing was scored")
        return
    print(format_table(report))
    print(f"fps measured on: {describe(machine)}")
    print(f"metrics written to {out / 'metrics.json'}")
