"""OpenCV's classical trackers (CSRT, KCF) behind the project's tracker protocol, as honest peers."""
from __future__ import annotations

import cv2
import numpy as np

from .tracker import FrameResult, check_init_box

BASELINES = {"csrt": cv2.TrackerCSRT.create, "kcf": cv2.TrackerKCF.create}


class OpenCVTracker:
    """``init(frame, box)`` / ``update(frame) -> FrameResult``; on a reported failure the last box is kept, so a
    box is never NaN or empty."""

    def __init__(self, name: str):
        if name not in BASELINES:
            raise ValueError(f"unknown baseline tracker {name!r}; valid: {sorted(BASELINES)}")
        self.name = name

    def init(self, frame: np.ndarray, box: np.ndarray) -> None:
        box = check_init_box(box, frame.shape)
        self.tracker = BASELINES[self.name]()
        self.tracker.init(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), tuple(int(round(v)) for v in box))
        self.box = box

    def update(self, frame: np.ndarray) -> FrameResult:
        ok, box = self.tracker.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        box = np.asarray(box, dtype=np.float64)
        if ok and np.isfinite(box).all() and box[2] > 0 and box[3] > 0:
            self.box = box
        return FrameResult(box=self.box.copy(), score=float(ok))


def make_baseline(name: str) -> OpenCVTracker:
    return OpenCVTracker(name)
