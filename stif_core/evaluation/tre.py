"""OTB's temporal robustness evaluation (TRE; Wu, Lim and Yang, CVPR 2013): each sequence tracked from several
starts, each start a segment from a frame with a visible ground-truth box to the sequence's end. A sequence's
curves pool the frames of all its segments (a long early segment counts more than a short late one), and the
overall curves average the sequences, as OTB's toolkit does. More starts give each sequence's score more
evidence, and paired differences between trackers, which pair by sequence, narrower intervals.

Segment ``k`` of sequence ``name`` is the sequence ``name@<start>``: the harness tracks, stores and resumes it as
any other sequence."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..data.sequences import Sequence
from .metrics import CURVES, visible_frames

MIN_FRAMES = 20  # OTB: a segment has at least this many frames
SEPARATOR = "@"  # name@start


def segment_starts(visible: np.ndarray, count: int) -> list[int]:
    """OTB's TRE starts (``split_seq_TRE``): ``count`` frames spread evenly over the frames with a visible box that
    leave at least ``MIN_FRAMES`` frames to the end, the first of them frame 0 and the last the latest such frame.
    Fewer when the sequence has fewer candidates; frame 0 only when ``count`` is 1 (one-pass evaluation)."""
    n = len(visible)
    candidates = [i for i in np.flatnonzero(visible) if n - i >= MIN_FRAMES] or [0]
    if count == 1 or len(candidates) == 1:
        return [int(candidates[0])]
    end = len(candidates)  # OTB's 1-based index of the last candidate
    picks = np.floor(np.arange(1, end, end / (count - 1))).astype(int).tolist() + [end]
    return sorted({int(candidates[p - 1]) for p in picks})


def segment(seq: Sequence, start: int) -> Sequence:
    """The sequence from frame ``start`` to its end, named ``name@start``; every per-frame field cut alike."""
    if start == 0:
        return replace(seq, name=f"{seq.name}{SEPARATOR}0")
    cover = seq.attributes.get("cover")
    attributes = seq.attributes | ({"cover": np.asarray(cover)[start:]} if cover is not None else {})
    return replace(seq, name=f"{seq.name}{SEPARATOR}{start}", frames=seq.frames[start:], boxes=seq.boxes[start:],
                   absent=None if seq.absent is None else seq.absent[start:], attributes=attributes)


def segments(sequences: list[Sequence], count: int, hidden) -> list[Sequence]:
    """Every sequence's TRE segments (``hidden(seq)``: its (L,) hidden frames or None, ``harness.hidden_frames``)."""
    return [segment(s, start) for s in sequences
            for start in segment_starts(visible_frames(s.boxes, hidden(s)), count)]


def base_name(name: str) -> str:
    """``name@start`` -> ``name``."""
    return name.rsplit(SEPARATOR, 1)[0]


def pool_segments(per_segment: dict[str, dict]) -> dict[str, dict]:
    """``evaluate_sequence`` results of segments -> one result per sequence: its curves the frame-weighted mean of
    its segments' curves (OTB's pooled frames), its GOT-10k IoUs and frame counts concatenated."""
    groups: dict[str, list[dict]] = {}
    for name, result in per_segment.items():
        groups.setdefault(base_name(name), []).append(result)
    pooled = {}
    for name, results in groups.items():
        frames = np.array([r["frames"] for r in results], dtype=np.float64)  # (K,)
        pooled[name] = {"curves": {k: (np.stack([r["curves"][k] for r in results]) * frames[:, None]).sum(0)
                                   / frames.sum() for k in CURVES},
                        "ious": np.concatenate([r["ious"] for r in results]), "frames": int(frames.sum())}
    return pooled
