"""Benchmark metrics with the definitions of the official GOT-10k toolkit (stif_design.md section 10).

Boxes are x, y, w, h. OTB: first frame set to the ground truth and counted, success = IoU > thr over
linspace(0, 1, 21), AUC = mean of the curve, precision = centre error <= 0..50 px, centre = xy + (wh - 1) / 2,
curves averaged over sequences. GOT-10k: first frame excluded, boxes clipped to the image, only frames where
the target is visible, IoUs pooled over sequences; AO, SR0.5 (IoU > 0.5), SR0.75. Normalised precision
(LaSOT): centre error divided per axis by max(1, ground-truth size), thresholds linspace(0, 0.5, 51), score
the mean of the curve.
"""
from __future__ import annotations

import numpy as np

IOU_THRESHOLDS = np.linspace(0, 1, 21)
CE_THRESHOLDS = np.arange(0, 51)
NORM_THRESHOLDS = np.linspace(0, 0.5, 51)
KEYS = ("auc", "prec20", "norm_prec", "ao", "sr50", "sr75")


def rect_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x, y, w, h each -> (N,) continuous IoU (no +1), in [0, 1]."""
    x1 = np.maximum(a[:, 0], b[:, 0])
    y1 = np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)  # (N,)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def clip_to_image(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Clip x, y, w, h boxes to the image (the toolkit's ``bound``); a copy."""
    b = np.array(boxes, dtype=np.float64)
    b[:, 0] = np.clip(b[:, 0], 0, width)
    b[:, 1] = np.clip(b[:, 1], 0, height)
    b[:, 2] = np.clip(b[:, 2], 0, width - b[:, 0])
    b[:, 3] = np.clip(b[:, 3], 0, height - b[:, 1])
    return b


def centers(boxes: np.ndarray) -> np.ndarray:
    return boxes[:, :2] + (boxes[:, 2:] - 1) / 2  # (N, 2)


def center_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) Euclidean distance of the centres, in pixels."""
    return np.sqrt(((centers(a) - centers(b)) ** 2).sum(-1))


def normalized_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) centre error with each axis divided by max(1, the ground truth's size on it)."""
    d = (centers(pred) - centers(gt)) / np.maximum(1.0, gt[:, 2:])  # (N, 2)
    return np.sqrt((d ** 2).sum(-1))


def otb_curves(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """Success (21,), precision (51,) and normalised precision (51,) curves of one sequence."""
    pred = np.array(pred, dtype=np.float64)
    pred[0] = gt[0]  # the first frame is the initialisation
    iou = rect_iou(pred, gt)[:, None]
    ce = center_error(pred, gt)[:, None]
    nce = normalized_center_error(pred, gt)[:, None]
    return {"success": (iou > IOU_THRESHOLDS[None]).mean(0),
            "precision": (ce <= CE_THRESHOLDS[None]).mean(0),
            "norm_precision": (nce <= NORM_THRESHOLDS[None]).mean(0)}


def got10k_ious(pred: np.ndarray, gt: np.ndarray, image_size: tuple[int, int],
                visible: np.ndarray | None = None) -> np.ndarray:
    """IoUs of frames 1.. (the first excluded) with both boxes clipped to the (width, height) image,
    only where the target is visible."""
    w, h = image_size
    iou = rect_iou(clip_to_image(pred[1:], w, h), clip_to_image(gt[1:], w, h))
    if visible is not None:
        iou = iou[np.asarray(visible)[1:]]
    return iou


def evaluate_sequence(pred: np.ndarray, gt: np.ndarray, image_size: tuple[int, int],
                      absent: np.ndarray | None = None) -> dict:
    """Per-sequence metrics and curves. gt rows that are NaN or marked absent count as not visible for the
    GOT-10k metrics (OTB sequences have none)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"{len(pred)} predicted boxes for {len(gt)} ground-truth boxes")
    visible = np.isfinite(gt).all(1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    if absent is not None:
        visible &= ~np.asarray(absent, bool)
    keep = visible.copy()
    keep[0] = True  # the initial frame always counts for OTB
    curves = otb_curves(pred[keep], gt[keep])
    ious = got10k_ious(pred, np.where(visible[:, None], gt, 0), image_size, visible)
    return {"curves": curves, "ious": ious}


def summarize(per_sequence: dict[str, dict]) -> dict:
    """Overall and per-sequence scores from ``evaluate_sequence`` results: OTB curves averaged over
    sequences, GOT-10k IoUs pooled over frames."""
    def scores(curves: dict, ious: np.ndarray) -> dict:
        return {"auc": float(curves["success"].mean()), "prec20": float(curves["precision"][20]),
                "norm_prec": float(curves["norm_precision"].mean()),
                "ao": float(ious.mean()) if len(ious) else float("nan"),
                "sr50": float((ious > 0.5).mean()) if len(ious) else float("nan"),
                "sr75": float((ious > 0.75).mean()) if len(ious) else float("nan")}

    seqs = {name: scores(r["curves"], r["ious"]) for name, r in per_sequence.items()}
    mean_curves = {k: np.mean([r["curves"][k] for r in per_sequence.values()], 0)
                   for k in ("success", "precision", "norm_precision")}
    pooled = np.concatenate([r["ious"] for r in per_sequence.values()])
    return {"overall": scores(mean_curves, pooled), "per_sequence": seqs,
            "curves": {k: v.tolist() for k, v in mean_curves.items()}}
