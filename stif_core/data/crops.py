"""Square search-region crops (STMTrack): side = context * sqrt(w * h) around a centre, resized to S x S,
padded with the frame's mean colour; boxes map between frame and crop coordinates."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CONTEXT = 4.0  # crop side = 4 * sqrt(w * h)


@dataclass(frozen=True)
class CropWindow:
    """A window of the frame: centre (cx, cy) and side in frame pixels, resized to ``size`` x ``size``.
    ``stretch`` (training only) widens the content by sqrt(stretch) and shortens it by the same factor, so
    a target's aspect ratio in the crop is ``stretch`` times its own and its area is unchanged."""

    cx: float
    cy: float
    side: float
    size: int
    stretch: float = 1.0

    @property
    def scale(self) -> float:
        """Crop pixels per frame pixel (the geometric mean of the two axes' scales)."""
        return self.size / self.side

    @property
    def scales(self) -> np.ndarray:
        """Crop pixels per frame pixel along x and y, as (4,) for x1, y1, x2, y2."""
        kx, ky = self.scale * np.sqrt(self.stretch), self.scale / np.sqrt(self.stretch)
        return np.array([kx, ky, kx, ky])

    def to_crop(self, box_xyxy: np.ndarray) -> np.ndarray:
        """Frame x1, y1, x2, y2 (..., 4) -> crop coordinates."""
        c = np.array([self.cx, self.cy, self.cx, self.cy])
        return (np.asarray(box_xyxy, dtype=np.float64) - c) * self.scales + (self.size - 1) / 2

    def to_frame(self, box_xyxy: np.ndarray) -> np.ndarray:
        """Crop x1, y1, x2, y2 (..., 4) -> frame coordinates."""
        c = np.array([self.cx, self.cy, self.cx, self.cy])
        return (np.asarray(box_xyxy, dtype=np.float64) - (self.size - 1) / 2) / self.scales + c


def square_stretch(box_xywh: np.ndarray) -> float:
    """The ``CropWindow.stretch`` that makes a box square in the crop, h / w, kept within a factor 4."""
    return float(np.clip(box_xywh[3] / box_xywh[2], 0.25, 4.0))


def xywh_to_xyxy(box: np.ndarray) -> np.ndarray:
    box = np.asarray(box, dtype=np.float64)
    return np.concatenate([box[..., :2], box[..., :2] + box[..., 2:]], -1)


def xyxy_to_xywh(box: np.ndarray) -> np.ndarray:
    box = np.asarray(box, dtype=np.float64)
    return np.concatenate([box[..., :2], box[..., 2:] - box[..., :2]], -1)


def window_around(box_xywh: np.ndarray, size: int, context: float = CONTEXT) -> CropWindow:
    """The search window centred on a box, side = context * sqrt(w * h)."""
    x, y, w, h = (float(v) for v in box_xywh)
    return CropWindow(x + w / 2, y + h / 2, context * float(np.sqrt(w * h)), size)


def crop(frame: np.ndarray, window: CropWindow, pad: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 -> (S, S, 3) uint8; pixels outside the frame take ``pad`` (default: the mean colour)."""
    if pad is None:
        pad = cv2.mean(frame)[:frame.shape[-1]]  # the mean colour, summed in float64 (20x numpy's mean here)
    s, (kx, ky) = window.size, window.scales[:2]
    shift = (s - 1) / 2
    m = np.array([[kx, 0, shift - kx * window.cx], [0, ky, shift - ky * window.cy]], dtype=np.float64)
    return cv2.warpAffine(frame, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(float(v) for v in pad))


def box_mask(box_xyxy: np.ndarray, size: int) -> np.ndarray:
    """Foreground mask (S, S) float32: 1 on pixels whose centre lies inside the crop-coordinate box."""
    r = np.arange(size, dtype=np.float64)
    x1, y1, x2, y2 = box_xyxy
    inside_x = (r >= x1) & (r <= x2)  # (S,)
    inside_y = (r >= y1) & (r <= y2)  # (S,)
    return (inside_y[:, None] & inside_x[None, :]).astype(np.float32)


def to_chw(image: np.ndarray) -> np.ndarray:
    """(S, S, 3) uint8 -> (3, S, S) uint8, the layout the network takes (as float 0-255)."""
    return np.ascontiguousarray(image.transpose(2, 0, 1))
