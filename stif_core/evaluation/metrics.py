"""Benchmark metrics with the definitions of the official GOT-10k toolkit (``got10k`` 0.1.3; docs/design.md,
section 9), in numpy.

Boxes are x, y, w, h; IoU is continuous (no +1). OTB (``ExperimentOTB``): the first frame is set to the ground
truth and counted, success = IoU > thr over linspace(0, 1, 21), AUC = mean of the curve, precision = centre
error <= 0..50 px with centre = xy + (wh - 1) / 2, curves averaged over sequences. GOT-10k
(``ExperimentGOT10k``): first frame excluded, both boxes clipped to the image, only frames whose target is
visible, IoUs pooled over the frames of all sequences; AO = mean IoU, SR0.5 = share of IoU > 0.5, SR0.75 alike.
Normalised precision (absent from the toolkit; LaSOT's and pytracking's definition): the centre error with each
axis divided by max(1, the ground truth's size on it), thresholds 0, 0.01, ..., 0.5, score = mean of the curve (the
area under it, as the LaSOT and TrackingNet papers rank; pytracking prints the curve at 0.2 instead).
Frames whose target is hidden (marked absent, or a ground truth that is NaN or empty) are left out of every
metric, as GOT-10k leaves out frames of cover 0.
"""
from __future__ import annotations

import numpy as np

IOU_THRESHOLDS = np.linspace(0, 1, 21)
CE_THRESHOLDS = np.arange(0, 51)
NORM_THRESHOLDS = np.arange(0, 51) / 100
CURVES = ("success", "precision", "norm_precision")
KEYS = ("auc", "prec20", "norm_prec", "ao", "sr50", "sr75")


def rect_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x, y, w, h each -> (N,) continuous IoU in [0, 1], with the toolkit's eps in the denominator."""
    x1 = np.maximum(a[:, 0], b[:, 0])  # (N,)
    y1 = np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)  # (N,)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter  # (N,)
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def clip_to_image(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """(N, 4) boxes clipped to the image as the toolkit's ``bound`` does (x, y first, then w, h); a copy."""
    b = np.array(boxes, dtype=np.float64)  # (N, 4)
    b[:, 0] = np.clip(b[:, 0], 0, width)
    b[:, 1] = np.clip(b[:, 1], 0, height)
    b[:, 2] = np.clip(b[:, 2], 0, width - b[:, 0])
    b[:, 3] = np.clip(b[:, 3], 0, height - b[:, 1])
    return b


def centers(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) -> (N, 2) centres, xy + (wh - 1) / 2 as the toolkit (and OTB's MATLAB code) computes them."""
    return boxes[:, :2] + (boxes[:, 2:] - 1) / 2


def center_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) Euclidean distance of the centres, in pixels."""
    return np.sqrt(((centers(a) - centers(b)) ** 2).sum(-1))


def normalized_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) centre error with each axis divided by max(1, the ground truth's size on it) (docs/design.md, section 9)."""
    d = (centers(pred) - centers(gt)) / np.maximum(1.0, gt[:, 2:])  # (N, 2)
    return np.sqrt((d ** 2).sum(-1))


def otb_curves(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """Success (21,), precision (51,) and normalised precision (51,) curves of one sequence's visible frames, the
    first one's prediction replaced by the ground truth."""
    pred = np.array(pred, dtype=np.float64)  # (N, 4)
    pred[0] = gt[0]
    iou = rect_iou(pred, gt)[:, None]  # (N, 1)
    ce = center_error(pred, gt)[:, None]
    nce = normalized_center_error(pred, gt)[:, None]
    return {"success": (iou > IOU_THRESHOLDS[None]).mean(0),
            "precision": (ce <= CE_THRESHOLDS[None]).mean(0),
            "norm_precision": (nce <= NORM_THRESHOLDS[None]).mean(0)}


def got10k_ious(pred: np.ndarray, gt: np.ndarray, image_size: tuple[int, int],
                visible: np.ndarray) -> np.ndarray:
    """IoUs of the visible frames after the first, both boxes clipped to the (width, height) image."""
    w, h = image_size
    gt = np.where(visible[:, None], gt, 0.0)  # (L, 4) hidden rows may be NaN; they are dropped below
    iou = rect_iou(clip_to_image(pred[1:], w, h), clip_to_image(gt[1:], w, h))  # (L - 1,)
    return iou[visible[1:]]


def visible_frames(gt: np.ndarray, absent: np.ndarray | None = None) -> np.ndarray:
    """(L,) True where the ground truth is a finite box of positive size and the target is not marked absent."""
    visible = np.isfinite(gt).all(1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)  # (L,)
    return visible if absent is None else visible & ~np.asarray(absent, bool)


def evaluate_sequence(pred: np.ndarray, gt: np.ndarray, image_size: tuple[int, int],
                      absent: np.ndarray | None = None) -> dict:
    """One sequence: ``curves`` (OTB's) over its ``frames`` visible frames, and ``ious`` (GOT-10k's, pooled later);
    ``image_size`` is (width, height)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"{len(pred)} predicted boxes for {len(gt)} ground-truth boxes")
    visible = visible_frames(gt, absent)
    if not visible[0]:
        raise ValueError("the first frame needs a visible ground-truth box: the tracker starts from it")
    return {"curves": otb_curves(pred[visible], gt[visible]), "ious": got10k_ious(pred, gt, image_size, visible),
            "frames": int(visible.sum())}


def scores(curves: dict[str, np.ndarray], ious: np.ndarray) -> dict[str, float]:
    """The six scores from OTB curves and GOT-10k IoUs (AO, SR NaN when no frame counts)."""
    def rate(values: np.ndarray) -> float:
        return float(values.mean()) if len(values) else float("nan")

    return {"auc": float(curves["success"].mean()), "prec20": float(curves["precision"][20]),
            "norm_prec": float(curves["norm_precision"].mean()),
            "ao": rate(ious), "sr50": rate(ious > 0.5), "sr75": rate(ious > 0.75)}


def summarize(per_sequence: dict[str, dict]) -> dict:
    """``overall`` and ``per_sequence`` scores from ``evaluate_sequence`` results, and the overall ``curves``."""
    mean_curves = {k: np.mean([r["curves"][k] for r in per_sequence.values()], 0) for k in CURVES}
    pooled = np.concatenate([r["ious"] for r in per_sequence.values()])  # (sum of counted frames,)
    return {"overall": scores(mean_curves, pooled),
            "per_sequence": {name: scores(r["curves"], r["ious"]) for name, r in per_sequence.items()},
            "curves": {k: v.tolist() for k, v in mean_curves.items()}}
