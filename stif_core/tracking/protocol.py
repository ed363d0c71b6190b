"""The tracker protocol every tracker of the project follows (STIF and the OpenCV peers):
``init(frame, box)`` with a checked frame and first box, ``update(frame) -> FrameResult``, and
``TrackerFailure`` when a tracker cannot go on."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..data.crops import xywh_to_xyxy


@dataclass
class FrameResult:
    """What ``update`` returns per frame: the box and the diagnostics the notebooks plot."""

    box: np.ndarray  # (4,) x, y, w, h in frame pixels
    score: float = float("nan")  # peak of sigmoid(cls) * sigmoid(ctr)
    peak: tuple[int, int] | None = None  # (row, col) of the chosen cell
    memory_frames: list[int] = field(default_factory=list)  # frame indices in memory, initial first
    temporal_weights: np.ndarray | None = None  # (N,) or (N, H, W) when the variant has TDE
    score_map: np.ndarray | None = field(default=None, repr=False)  # (H, W)


class TrackerFailure(RuntimeError):
    """A tracker that cannot go on with a sequence (an OpenCV peer's internal error); the harness scores the
    rest of the sequence with its last box and carries on."""


def check_frame(frame) -> np.ndarray:
    """A frame as every tracker takes it: (H, W, 3) uint8 RGB. Float frames are refused rather than guessed at
    (0-1 or 0-255?): convert them first, e.g. ``(frame * 255).round().astype(np.uint8)`` for 0-1 floats."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) < 1:
        shape = getattr(frame, "shape", None)
        raise ValueError(f"a frame must be an (H, W, 3) RGB array; got {type(frame).__name__} of shape {shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"a frame must be uint8 RGB (0-255); got {frame.dtype}: convert it first, e.g. "
                         "(frame * 255).round().astype(np.uint8) for floats in 0-1")
    return frame


def check_next_frame(frame, started: tuple[int, int] | None) -> np.ndarray:
    """A frame for ``update``: checked as ``check_frame`` does, of the (H, W) the tracker was started on
    (``started``; None: ``init`` has not run). Boxes, crops and the motion model are in the first frame's
    pixels, so a frame of another size is refused rather than tracked wrongly."""
    if started is None:
        raise RuntimeError("update() before init(): start the tracker with init(first_frame, box)")
    frame = check_frame(frame)
    if frame.shape[:2] != tuple(started):
        raise ValueError(f"a frame of {frame.shape[1]}x{frame.shape[0]} pixels, but the tracker was started on a "
                         f"{started[1]}x{started[0]} frame; every frame of a video must have one size")
    return frame


def check_init_box(box: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """A valid first box: finite, positive size, overlapping the frame (clipped to it with a warning)."""
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise ValueError(f"initial box {box.tolist()} must be four finite numbers x, y, w, h")
    if box[2] < 1 or box[3] < 1:
        raise ValueError(f"initial box {box.tolist()} is under one pixel wide or high: no tracker can start from it")
    h, w = frame_shape[:2]
    x1, y1, x2, y2 = xywh_to_xyxy(box)
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if cx2 <= cx1 or cy2 <= cy1:
        raise ValueError(f"initial box {box.tolist()} lies outside the {w}x{h} frame")
    if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
        warnings.warn(f"initial box {box.tolist()} is partly off the {w}x{h} frame; clipped to it", stacklevel=3)
    return np.array([cx1, cy1, cx2 - cx1, cy2 - cy1])
