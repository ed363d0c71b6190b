"""``python -m stif_core eval``: STIF checkpoints and OpenCV peers tracked in one harness (``evaluation.cli``)."""
from __future__ import annotations

from ..data.sequences import LAYOUTS
from ..device import DEVICES

RESUME = "the sequences tracked so far are kept in --out: the same command resumes there"


def register(sub) -> None:
    from ..config import MAX_CROP_SIZE
    from ..options import MAX_STARTS, bounded_int, positive_int

    p = sub.add_parser("eval", help="track a dataset's sequences and write metrics.json")
    p.add_argument("--data-root", help="dataset folder (default: $STIF_DATA_ROOT or ../shared/data/sequences)")
    p.add_argument("--layout", default="otb", choices=LAYOUTS,
                   help="the data root's layout: otb (this project's, with splits.json beside it), got10k, lasot, "
                        "trackingnet, or auto (detected)")
    p.add_argument("--sequences", nargs="+", help="sequence names (default: every sequence found)")
    p.add_argument("--split", help="otb: a split of splits.json, e.g. val; got10k: train/val/test; lasot: a class; "
                                   "trackingnet: train/test or a chunk (TRAIN_3)")
    p.add_argument("--checkpoint", action="append", default=[],
                   help="STIF weights: a .safetensors file or a shipped model's name (stif_lite_full); repeatable")
    p.add_argument("--baselines", default="", help="comma-separated OpenCV peers, e.g. csrt,kcf")
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
    from ..evaluation.cli import run_eval

    run_eval(args)
