"""The box from the head maps (STMTrack's post-processing, from SiamRPN): a penalty on changes of size and aspect,
a blend with a cosine window, the best cell, and the box that follows, its size smoothed."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.crops import CropWindow
from ..model import STIFOutput
from ..model.head import decode_boxes, score_map


@dataclass(frozen=True)
class TrackerParams:
    """STMTrack's post-processing: size smoothing lr = penalty * score * test_lr, cosine window blend
    (window_influence), scale / ratio change penalty (penalty_k), minimum box side in pixels."""

    test_lr: float = 0.55
    window_influence: float = 0.205
    penalty_k: float = 0.076
    min_size: float = 10.0


PARAM_SETS = {
    "otb": TrackerParams(0.55, 0.205, 0.076),
    "got10k": TrackerParams(0.95, 0.21, 0.04),  # also LaSOT and TrackingNet
}


@dataclass
class Selection:
    """The chosen cell of one step: index, score, box (crop x1, y1, x2, y2), size-smoothing rate, and the maps
    of the post-processing: the raw score, the scale / ratio penalty, and the penalised score blended with the
    cosine window (whose argmax is ``best``)."""

    best: int
    score: float
    box_crop: np.ndarray
    lr: float
    score_map: torch.Tensor  # (HW,) sigmoid(cls) * sigmoid(ctr)
    penalty: torch.Tensor  # (HW,) in (0, 1]
    windowed: torch.Tensor  # (HW,)


def cosine_window(cells: int) -> torch.Tensor:
    """The Hann window over a cells x cells grid, flattened: (HW,), strictly positive."""
    hann = np.hanning(cells + 2)[1:-1]  # (H,)
    return torch.as_tensor(np.outer(hann, hann).flatten(), dtype=torch.float32)


def select_cell(out: STIFOutput, centers: torch.Tensor, window: CropWindow, wh: np.ndarray, hann: torch.Tensor,
                p: TrackerParams) -> Selection:
    """Penalise changes of scale and aspect from the current size ``wh`` (frame pixels), blend with the cosine
    window ``hann`` (HW,), pick the best cell of the head maps (``centers``: (HW, 2) cell centres in crop pixels)."""
    score = score_map(out.cls, out.ctr).flatten().cpu()  # (HW,)
    boxes = decode_boxes(out.reg, centers)[0].cpu()  # (HW, 4) crop pixels
    size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-3)  # (HW, 2)
    prev = torch.as_tensor(wh * window.scales[:2], dtype=torch.float32)  # current size in crop pixels

    def change(r):
        return torch.maximum(r, 1 / r)

    def sz(w, h):
        pad = (w + h) / 2
        return torch.sqrt((w + pad) * (h + pad))

    s_c = change(sz(size[:, 0], size[:, 1]) / sz(prev[0], prev[1]))
    r_c = change((prev[0] / prev[1]) / (size[:, 0] / size[:, 1]))
    penalty = torch.exp(-(r_c * s_c - 1) * p.penalty_k)  # (HW,)
    pscore = penalty * score * (1 - p.window_influence) + hann * p.window_influence
    best = int(pscore.argmax())
    lr = float(penalty[best] * score[best] * p.test_lr)
    return Selection(best, float(score[best]), boxes[best].numpy().astype(np.float64), lr, score, penalty, pscore)


def next_box(box_frame_xyxy: np.ndarray, lr: float, wh: np.ndarray, frame_shape: tuple[int, int],
             min_size: float) -> np.ndarray:
    """The chosen box's centre, the size ``wh`` smoothed towards the chosen one at rate lr, kept inside the frame
    of ``frame_shape`` (H, W) and >= min_size -> x, y, w, h."""
    h, w = frame_shape
    center = np.clip((box_frame_xyxy[:2] + box_frame_xyxy[2:]) / 2, 0, [w, h])
    size = wh * (1 - lr) + (box_frame_xyxy[2:] - box_frame_xyxy[:2]) * lr
    size = np.clip(size, min_size, [w, h])
    return np.concatenate([center - size / 2, size])
