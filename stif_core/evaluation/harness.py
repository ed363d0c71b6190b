"""Run trackers over sequences, write result files and ``metrics.json``. Sequences already tracked (their
result files exist) are read back instead of tracked again, so an interrupted run resumes where it stopped."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from ..data.sequences import Sequence
from .metrics import KEYS, evaluate_sequence, summarize
from .results import read_otb, write_got10k, write_otb, write_text


def track_sequence(tracker, seq: Sequence, progress: bool = True, on_frame: Callable | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (L, 4) x, y, w, h and seconds per frame (L,), frame decoding included. The first box is the
    ground truth the tracker starts from. ``on_frame(i, result)`` receives every later frame's result."""
    boxes = np.zeros((len(seq), 4))
    times = np.zeros(len(seq))
    t0 = time.perf_counter()
    frame = seq.frame(0)
    tracker.init(frame, seq.boxes[0])
    times[0] = time.perf_counter() - t0
    boxes[0] = seq.boxes[0]
    for i in tqdm(range(1, len(seq)), desc=seq.name, disable=not progress, leave=False):
        t0 = time.perf_counter()
        result = tracker.update(seq.frame(i))
        times[i] = time.perf_counter() - t0
        boxes[i] = result.box
        if on_frame is not None:
            on_frame(i, result)
    return boxes, times


def fps(times: np.ndarray) -> float:
    """Frames per second over the tracked frames (the initialisation excluded)."""
    return float((len(times) - 1) / max(times[1:].sum(), 1e-9))


def evaluate(trackers: dict[str, Callable[[], object]], sequences: list[Sequence], out_dir: str | Path,
             progress: bool = True) -> dict:
    """Track every sequence with every tracker; results under ``out/<tracker>/{otb,got10k}/`` and the scores
    (``auc``, ``prec20``, ``norm_prec``, ``ao``, ``sr50``, ``sr75``, ``fps``) in ``out/metrics.json``."""
    out = Path(out_dir)
    report = {}
    for name, factory in trackers.items():
        per_seq, seq_fps, all_times = {}, {}, []
        tracker = None
        for seq in tqdm(sequences, desc=name, disable=not progress):
            folder = out / name / "otb"
            if (folder / f"{seq.name}.txt").exists():
                boxes, times = read_otb(folder, seq.name)
            else:
                tracker = tracker or factory()
                boxes, times = track_sequence(tracker, seq, progress)
                write_got10k(out / name / "got10k", seq.name, boxes, times)
                write_otb(folder, seq.name, boxes, times)
            h, w = seq.frame(0).shape[:2]
            per_seq[seq.name] = evaluate_sequence(boxes, seq.boxes, (w, h), seq.absent)
            seq_fps[seq.name] = fps(times)
            all_times.append(times[1:])
        summary = summarize(per_seq)
        summary["overall"]["fps"] = float(sum(len(t) for t in all_times) / max(sum(t.sum() for t in all_times), 1e-9))
        for seq_name, f in seq_fps.items():
            summary["per_sequence"][seq_name]["fps"] = f
        report[name] = summary
    write_text(out / "metrics.json", json.dumps(report, indent=2))
    return report


def format_table(report: dict) -> str:
    """The overall scores, one line per tracker."""
    lines = [f"{'tracker':<16}" + "".join(f"{k:>10}" for k in (*KEYS, "fps"))]
    for name, r in report.items():
        lines.append(f"{name:<16}" + "".join(f"{r['overall'][k]:>10.3f}" for k in (*KEYS, "fps")))
    return "\n".join(lines)
