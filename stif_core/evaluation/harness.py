"""Run trackers over sequences, write result files and ``metrics.json``. Sequences already tracked (their
complete result files exist) are read back instead of tracked again, so an interrupted run resumes where it
stopped and loses nothing. Each tracker's folder records what produced its results (``run.json``: checkpoint
hash, tracker parameters, memory policy); results of anything else are refused, never reported as this run's."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from ..checkpoint import write_text
from ..data.sequences import Sequence
from ..tracking.protocol import TrackerFailure
from .metrics import KEYS, evaluate_sequence, summarize
from .results import read_otb, write_got10k, write_otb


def track_sequence(tracker, seq: Sequence, progress: bool = True, on_frame: Callable | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (L, 4) x, y, w, h and seconds per frame (L,), frame decoding included. The first box is the
    ground truth the tracker starts from. ``on_frame(i, result)`` receives every later frame's result."""
    boxes = np.repeat(seq.boxes[:1], len(seq), axis=0)  # (L, 4); a failed tracker keeps its last box
    times = np.zeros(len(seq))  # (L,)
    i = 0
    try:
        t0 = time.perf_counter()
        tracker.init(seq.frame(0), seq.boxes[0])
        times[0] = time.perf_counter() - t0
        for i in tqdm(range(1, len(seq)), desc=seq.name, disable=not progress, leave=False):
            t0 = time.perf_counter()
            result = tracker.update(seq.frame(i))
            times[i] = time.perf_counter() - t0
            boxes[i] = result.box
            if on_frame is not None:
                on_frame(i, result)
    except TrackerFailure as err:
        boxes[i:] = boxes[max(i - 1, 0)]
        print(f"{seq.name}, frame {i}: {err}; its last box is kept for frames {i}-{len(seq) - 1}")
    return boxes, times


def fps(times: np.ndarray) -> float:
    """Frames per second over the tracked frames (the initialisation, and frames after a tracker's failure,
    which have no time, excluded)."""
    tracked = times[1:][times[1:] > 0]
    return float(len(tracked) / max(tracked.sum(), 1e-9))


def hidden_frames(seq: Sequence) -> np.ndarray | None:
    """(L,) True where the target is marked absent or, for GOT-10k, its cover label is 0 (the toolkit's rule)."""
    cover = seq.attributes.get("cover")
    if cover is None:
        return seq.absent
    hidden = np.asarray(cover) == 0  # (L,)
    return hidden if seq.absent is None else hidden | seq.absent


def check_out_dir(out: Path, sequences: list[Sequence]) -> None:
    """``ValueError`` when ``out`` lies inside the folder holding a sequence's frame folder (the data)."""
    for seq in sequences:
        if isinstance(seq.frames, np.ndarray) or not len(seq):
            continue
        data = Path(seq.frames[0]).resolve().parent.parent
        if out == data or data in out.parents:
            raise ValueError(f"output folder {out} lies inside the data folder {data}; results are never written there")


def claim_folder(folder: Path, signature: dict) -> None:
    """Record in ``folder/run.json`` what produces its results; ``ValueError`` when the folder already holds
    results of something else (another checkpoint, other parameters) or of an unrecorded run."""
    record = folder / "run.json"
    if record.exists():
        stored = json.loads(record.read_text())
        if stored != signature:
            changed = sorted(k for k in stored.keys() | signature.keys() if stored.get(k) != signature.get(k))
            was, asked = ({k: d.get(k) for k in changed} for d in (stored, signature))
            raise ValueError(f"{folder} holds results of another tracker set-up (stored {was}, this run {asked}); "
                             "choose another output folder, or delete that one to track again")
    elif (folder / "otb").exists():
        raise ValueError(f"{folder} holds results without a record of what produced them; choose another output "
                         "folder, or delete that one to track again")
    else:
        write_text(record, json.dumps(signature, indent=2, sort_keys=True))


def load_or_track(factory: Callable[[], object], seq: Sequence, folder: Path, progress: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """A sequence's boxes and times: read back when ``folder/otb`` holds a complete result for it (as many
    frames), else tracked by a fresh tracker and written in both layouts (GOT-10k first; the OTB boxes file
    marks completion)."""
    try:
        boxes, times = read_otb(folder / "otb", seq.name)
        if len(boxes) == len(seq):
            return boxes, times
        print(f"{folder.name}/{seq.name}: the stored result has {len(boxes)} frames, this run {len(seq)}; "
              "tracking again")
    except (OSError, ValueError):  # missing, or cut short by an interruption
        pass
    boxes, times = track_sequence(factory(), seq, progress)
    write_got10k(folder / "got10k", seq.name, boxes, times)
    write_otb(folder / "otb", seq.name, boxes, times)
    return boxes, times


def evaluate_tracker(factory: Callable[[], object], sequences: list[Sequence], folder: Path,
                     progress: bool) -> dict:
    """``summarize``'s report for one tracker, with ``fps`` overall and per sequence."""
    per_seq, seq_times = {}, {}
    for seq in tqdm(sequences, desc=folder.name, disable=not progress):
        boxes, times = load_or_track(factory, seq, folder, progress)
        h, w = seq.frame(0).shape[:2]
        per_seq[seq.name] = evaluate_sequence(boxes, seq.boxes, (w, h), hidden_frames(seq))
        seq_times[seq.name] = times
    report = summarize(per_seq)
    for name, times in seq_times.items():
        report["per_sequence"][name]["fps"] = fps(times)
    report["overall"]["fps"] = fps(np.concatenate([[0.0]] + [t[1:] for t in seq_times.values()]))
    return report


def evaluate(trackers: dict[str, Callable[[], object]], sequences: list[Sequence], out_dir: str | Path,
             progress: bool = True, signatures: dict[str, dict] | None = None) -> dict:
    """Track every sequence with every tracker (a fresh one per sequence, from its factory); results under
    ``out_dir/<tracker>/{otb,got10k}/`` and the scores (``auc``, ``prec20``, ``norm_prec``, ``ao``, ``sr50``,
    ``sr75``, ``fps``) in ``out_dir/metrics.json``, updated after each tracker (rows of earlier runs kept).
    ``signatures[name]``: what produces a tracker's results (default ``{"tracker": name}``), see
    ``claim_folder``. Returns this run's rows."""
    if not sequences:
        raise ValueError("no sequences to evaluate")
    out = Path(out_dir).resolve()
    check_out_dir(out, sequences)
    for name in trackers:  # every folder checked before any tracking starts
        claim_folder(out / name, (signatures or {}).get(name, {"tracker": name}))
    metrics = out / "metrics.json"
    stored = json.loads(metrics.read_text()) if metrics.exists() else {}
    report = {}
    for name, factory in trackers.items():
        report[name] = evaluate_tracker(factory, sequences, out / name, progress)
        write_text(metrics, json.dumps(stored | report, indent=2))
    return report


def format_table(report: dict) -> str:
    """The overall scores, one line per tracker."""
    lines = [f"{'tracker':<16}" + "".join(f"{k:>10}" for k in (*KEYS, "fps"))]
    for name, r in report.items():
        lines.append(f"{name:<16}" + "".join(f"{r['overall'][k]:>10.3f}" for k in (*KEYS, "fps")))
    return "\n".join(lines)
