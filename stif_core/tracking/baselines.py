"""OpenCV's trackers behind the project's tracker protocol, as honest peers: the classical CSRT and KCF, and the
two deep trackers OpenCV runs out of the box, NanoTrack v2 (``cv2.TrackerNano``) and VitTrack (``cv2.TrackerVit``),
whose ONNX files ship in ``stif_core/weights/peers`` with their licence and a NOTICE of origin.

With opencv-contrib 4.5.1+ and 5.x the constructors are ``cv2.TrackerCSRT.create`` and ``cv2.TrackerKCF.create``
(``cv2.legacy.*`` keeps the pre-4.5 API, with float boxes; not used here)."""
from __future__ import annotations

import cv2
import numpy as np

from ..paths import package_path
from .protocol import FrameResult, TrackerFailure, check_frame, check_init_box, check_next_frame

VIT_STD = (0.229, 0.224, 0.225)  # VitTrack's per-channel input standard deviations (ImageNet's), RGB


def peer_file(*parts: str) -> str:
    """A shipped peer model file; ``ValueError`` in one line when the installation lacks it."""
    path = package_path("weights", "peers", *parts)
    if not path.is_file():
        raise ValueError(f"peer model file {path} is missing: reinstall stif_core, which ships it (origin and "
                         "licence: stif_core/weights/peers/NOTICE)")
    return str(path)


def vit_stdvalue(std: tuple[float, ...] = VIT_STD) -> tuple[float, float, float, float]:
    """The ``TrackerVit_Params.stdvalue`` that makes OpenCV 5.0.0 scale the input by 1 / std per channel.

    OpenCV computes the scale as ``1.0 / stdvalue`` on a ``cv::Scalar``, and that division is a quaternion
    inverse, conj(s) / |s|^2: with the default stdvalue the network gets (1.494, -1.462, -1.468) / 255 instead of
    (4.367, 4.464, 4.444) / 255. Giving the quaternion inverse of the intended scale t = 1 / std, (t0, -t1, -t2, 0)
    / |t|^2, makes OpenCV's inverse come out as t."""
    t = 1.0 / np.asarray(std, dtype=np.float64)  # (3,) the intended scale
    return tuple(float(v) for v in quaternion_inverse((*t, 0.0)))


def quaternion_inverse(s: tuple[float, ...]) -> np.ndarray:
    """What OpenCV's ``1.0 / cv::Scalar`` gives: the inverse of the quaternion (s0, s1, s2, s3)."""
    s = np.asarray(s, dtype=np.float64)
    return np.array([s[0], -s[1], -s[2], -s[3]]) / (s ** 2).sum()


def nanotrack() -> cv2.Tracker:
    params = cv2.TrackerNano_Params()
    params.backbone = peer_file("nanotrack-v2", "nanotrack_backbone_sim.onnx")
    params.neckhead = peer_file("nanotrack-v2", "nanotrack_head_sim.onnx")
    return cv2.TrackerNano.create(params)


def vittrack() -> cv2.Tracker:
    params = cv2.TrackerVit_Params()
    params.net = peer_file("vittrack", "vitTracker.onnx")
    params.stdvalue = vit_stdvalue()
    return cv2.TrackerVit.create(params)


BASELINES = {"csrt": cv2.TrackerCSRT.create, "kcf": cv2.TrackerKCF.create, "nanotrack": nanotrack,
             "vittrack": vittrack}
SCORED = ("nanotrack", "vittrack")  # trackers with a confidence (``getTrackingScore``) and a box even when unsure


def to_cv_rect(box: np.ndarray) -> tuple[int, int, int, int]:
    """x, y, w, h rounded to OpenCV's integer rectangle, at least one pixel wide and high."""
    x, y, w, h = (int(round(v)) for v in box)
    return x, y, max(w, 1), max(h, 1)


class OpenCVTracker:
    """``init(frame, box)`` / ``update(frame) -> FrameResult``, frames RGB. CSRT and KCF: when OpenCV reports a
    failure or returns an empty box the last box is kept, so a box is never NaN or empty; ``score`` is 1 / 0 for
    found / lost. NanoTrack and VitTrack: their box whenever it is finite and not empty (VitTrack reports a failure
    below a score of 0.2 and still gives its best box), ``score`` their own confidence."""

    def __init__(self, name: str):
        if name not in BASELINES:
            raise ValueError(f"unknown baseline tracker {name!r}; valid: {sorted(BASELINES)}")
        self.name = name
        self.frame_shape = None  # (H, W) of the frame init() started on
        if name in SCORED:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # OpenCV's DNN notes, one per net
            BASELINES[name]()  # a missing model file fails here, before any sequence

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
        valid = bool(np.isfinite(box).all() and box[2] > 0 and box[3] > 0)
        scored = self.name in SCORED
        if valid and (ok or scored):
            self.box = box
        score = float(self.tracker.getTrackingScore()) if scored else float(ok and valid)
        return FrameResult(box=self.box.copy(), score=score)


def make_baseline(name: str) -> OpenCVTracker:
    """A fresh OpenCV tracker by name (``BASELINES``); ``ValueError`` naming the valid ones otherwise."""
    return OpenCVTracker(name)
