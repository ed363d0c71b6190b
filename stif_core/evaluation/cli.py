"""``python -m stif_core eval``: STIF checkpoints and OpenCV peers tracked in one harness and one run."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import load_model, read_metadata
from ..data.sequences import load_sequences, load_split, resolve_root
from ..paths import checkpoint_path
from ..tracking.baselines import BASELINES, make_baseline
from ..tracking.tracker import STIFTracker
from .harness import evaluate, format_table


def tracker_factories(checkpoints: list[str], baselines: list[str], params: str, policy: str,
                      device: str) -> dict:
    """name -> factory; STIF trackers are named ``stif-<variant>`` from their checkpoint's metadata."""
    factories = {}
    for path in checkpoints:
        model = load_model(path, device)  # a bad file fails here, before any tracking
        STIFTracker(model, params, policy)  # and so does a bad option
        name = f"stif-{read_metadata(checkpoint_path(path)).get('variant', Path(path).stem)}"
        factories[name] = lambda m=model: STIFTracker(m, params, policy)
    for b in baselines:
        if b not in BASELINES:
            raise SystemExit(f"unknown baseline {b!r}; valid: {sorted(BASELINES)}")
        factories[b] = lambda b=b: make_baseline(b)
    return factories


def run_eval(args: argparse.Namespace) -> dict:
    from .. import resolve_device

    root = resolve_root(args.data_root)
    out = Path(args.out).resolve()
    if out == root.resolve() or root.resolve() in out.parents:
        raise SystemExit(f"--out {out} lies inside the data root {root}; results are never written there")
    names = load_split(args.split, root) if args.split else args.sequences
    sequences = load_sequences(names, root)
    baselines = [b for b in args.baselines.split(",") if b]
    if not args.checkpoint and not baselines:
        raise SystemExit("nothing to evaluate: give --checkpoint and/or --baselines")
    device = resolve_device(args.device).type
    report = evaluate(tracker_factories(args.checkpoint, baselines, args.params, args.memory_policy, device),
                      sequences, out)
    print(format_table(report))
    print(f"metrics written to {out / 'metrics.json'}")
    return report
