"""OTB's temporal robustness evaluation (TRE; Wu, Lim and Yang, CVPR 2013): each sequence tracked from several
starts, each start a segment from a frame with a visible ground-truth box to the sequence's end. A sequence's
curves pool the frames of all its segments (a long early segment counts more than a short late one), and the
overall curves average the sequences, as OTB's toolkit does. More starts give each sequence's score more
evidence, and paired differences between trackers, which pair by sequence, narrower intervals.

Segment ``k`` of sequence ``name`` is the sequence ``name@<start>``: the harness tracks, stores and resumes it as
any other sequence. A TRE row records the starts asked (``starts``, the ``K`` of its name ``<tracker>-tre<K>``) and
those used (``starts_used``: per sequence in its entry, the fewest and most over sequences in the row), fewer where
a sequence is too short; each sequence's ``data`` is its first segment's fingerprint, which is the sequence's own
(as in a one-pass row) wherever frame 0 has a visible box, as one pass needs."""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace

import numpy as np

from ..data.sequences import Sequence
from .metrics import CURVES, visible_frames

MIN_FRAMES = 20  # OTB: a segment has at least this many frames
SEPARATOR = "@"  # name@start


def segment_starts(visible: np.ndarray, count: int) -> list[int]:
    """OTB's TRE starts (``split_seq_TRE``): ``count`` frames spread evenly over the frames with a visible box that
    leave at least ``MIN_FRAMES`` frames to the end (fewer when there are fewer such frames)."""
    n = len(visible)
    candidates = [i for i in np.flatnonzero(visible) if n - i >= MIN_FRAMES] or [0]
    count = min(count, len(candidates))  # as many starts as candidates picks every candidate
    if count == 1:
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


def starts_used(names: list[str]) -> dict[str, int]:
    """Segment names -> how many starts each sequence is tracked from."""
    return dict(Counter(base_name(name) for name in names))


def starts_record(asked: int, used: dict[str, int]) -> dict:
    """A TRE row's record of its starts: those asked, and the fewest and most any sequence is tracked from."""
    return {"starts": asked, "starts_used": {"fewest": min(used.values()), "most": max(used.values())}}


def shortfall(asked: int, used: dict[str, int]) -> str:
    """A line naming the sequences tracked from fewer starts than asked; empty when there are none."""
    short = [f"{name} {k}" for name, k in used.items() if k < asked]
    if not short:
        return ""
    return (f"{len(short)} of {len(used)} sequence(s) tracked from fewer than the {asked} starts asked (a start "
            f"needs a visible box and {MIN_FRAMES} frames to the end), their rows record the starts used: "
            + ", ".join(short[:10]) + (" ..." if len(short) > 10 else ""))


def starts_text(row: dict) -> str:
    """How many starts a row's sequences were tracked from: ``3``, or ``2 to 5 of the 5 asked``."""
    asked = row.get("starts", 1)
    used = row.get("starts_used", {"fewest": asked, "most": asked})
    if used["fewest"] == asked:
        return str(asked)
    span = used["fewest"] if used["fewest"] == used["most"] else f"{used['fewest']} to {used['most']}"
    return f"{span} of the {asked} asked"


def records_segments(row: dict, sequence: str) -> bool:
    """Whether a row's ``data`` of ``sequence`` is ``segments_digest`` (a TRE row recorded before its entries
    counted their starts) rather than the sequence's own fingerprint."""
    return row.get("starts", 1) > 1 and "starts_used" not in row["per_sequence"][sequence]


def segments_digest(prints: dict[str, str]) -> str:
    """A digest of a sequence's segments' fingerprints (segment name -> fingerprint, in start order): the ``data``
    of TRE rows recorded before they recorded the sequence's own."""
    return hashlib.sha256(";".join(f"{n}:{p}" for n, p in prints.items()).encode()).hexdigest()[:16]


def pool_segments(per_segment: dict[str, dict]) -> dict[str, dict]:
    """``evaluate_sequence`` results of segments -> one result per sequence: the frame-weighted mean of the
    segments' curves (OTB's pooled frames), their IoUs and frame counts concatenated."""
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
