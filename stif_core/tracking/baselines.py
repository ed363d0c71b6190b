"""OpenCV's classical trackers (CSRT, KCF) behind the project's tracker protocol, as honest peers.

With opencv-contrib 4.5.1+ and 5.x the constructors are ``cv2.TrackerCSRT.create`` and ``cv2.TrackerKCF.create``
(``cv2.legacy.*`` keeps the pre-4.5 API, with float boxes; not used here)."""
from __future__ import annotations

import cv2
import numpy as np

from .protocol import FrameResult, TrackerFailure, check_frame, check_init_box, check_next_frame

BASELINES = {"csrt": cv2.TrackerCSRT.create, "kcf": cv2.TrackerKCF.create}


def to_cv_rect(box: np.ndarray) -> tuple[int, int, int, int]:
    """x, y, w, h rounded to OpenCV's integer rectangle, at least one pixel wide and high."""
    x, y, w, h = (int(round(v)) for v in box)
    return x, y, max(w, 1), max(h, 1)


class OpenCVTracker:
    """``init(frame, box)`` / ``update(frame) -> FrameResult``, frames RGB. When OpenCV reports a failure or
    returns an empty box the last box is kept, so a box is never NaN or empty; ``score`` is 1 / 0 for found / lost."""

    def __init__(self, name: str):
        if name not in BASELINES:
            raise ValueError(f"unknown baseline tracker {name!r}; valid: {sorted(BASELINES)}")
        self.name = name
        self.frame_shape = None  # (H, W) of the frame init() started on

    def init(self, frame: np.ndarray, box: np.ndarray) -> None:
        box = check_init_box(box, check_frame(frame).shape)
        self.frame_shape = None
        self.tracker = BASELINES[self.name]()
        self.box = box
        try:
            self.tracker.init(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), to_cv_rect(box))
        except cv2.error as err:  # e.g. CSRT on a 1-pixel box or a 4 x 4 frame
            raise TrackerFailure(f"{self.name} could not start: {str(err).strip().splitlines()[-1]}") from None
        self.frame_shape = frame.shape[:2]

    def update(self, frame: np.ndarray) -> FrameResult:
        try:
            bgr = cv2.cvtColor(check_next_frame(frame, self.frame_shape), cv2.COLOR_RGB2BGR)
            ok, rect = self.tracker.update(bgr)
        except cv2.error as err:
            raise TrackerFailure(f"{self.name} failed: {str(err).strip().splitlines()[-1]}") from None
        box = np.asarray(rect, dtype=np.float64)  # (4,)
        ok = bool(ok) and np.isfinite(box).all() and box[2] > 0 and box[3] > 0
        if ok:
            self.box = box
        return FrameResult(box=self.box.copy(), score=float(ok))


def make_baseline(name: str) -> OpenCVTracker:
    """A fresh OpenCV tracker by name ("csrt" or "kcf"); ``ValueError`` naming the valid ones otherwise."""
    return OpenCVTracker(name)
