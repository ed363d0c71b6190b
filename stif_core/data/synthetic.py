"""Synthetic clips: a textured object moving over a natural-looking background, with a scale change and an
occluding bar. The fallback when no real data is found, and material for unit tests."""
from __future__ import annotations

import cv2
import numpy as np

from .sequences import Sequence


def fractal_texture(rng: np.random.Generator, h: int, w: int, octaves: int = 5) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]: summed blurred noise octaves with a colour tint per octave."""
    out = np.zeros((h, w, 3), np.float32)
    for o in range(octaves):
        cells = 2 ** (o + 2)
        noise = rng.random((cells, cells, 3)).astype(np.float32)
        out += cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC) / 2 ** o
    out -= out.min()
    return out / max(out.max(), 1e-6)


def synthetic_clip(n_frames: int = 60, size: tuple[int, int] = (240, 320), seed: int = 0,
                   name: str = "synthetic") -> Sequence:
    """A deterministic clip: the object follows a smooth path, grows by up to 60 %, and a bar crosses it
    (the frames where the bar hides it entirely are marked absent)."""
    rng = np.random.default_rng(seed)
    h, w = size
    background = (fractal_texture(rng, h, w) * 200 + 20).astype(np.float32)  # (H, W, 3)
    base = np.array([w, h], np.float64) * rng.uniform(0.12, 0.2)  # object width, height at scale 1
    patch = fractal_texture(rng, 64, 64, octaves=3) * 255  # (64, 64, 3)
    patch[..., rng.integers(3)] = 255 - patch[..., rng.integers(3)]  # a colour unlike the background
    t = np.linspace(0, 1, n_frames)
    phase = rng.uniform(0, 2 * np.pi, 2)
    cx = w * (0.5 + 0.3 * np.sin(2 * np.pi * t + phase[0]))
    cy = h * (0.5 + 0.25 * np.sin(3 * np.pi * t + phase[1]))
    scale = 1 + 0.6 * t
    bar_w = base[0] * 2.0
    bar_x = cx - bar_w / 2 - w * 0.5 * (t - 0.5)  # the bar sweeps right to left across the object
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    boxes = np.empty((n_frames, 4), np.float64)
    absent = np.zeros(n_frames, bool)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n_frames):
        ow, oh = base * scale[i]
        x0, y0 = cx[i] - ow / 2, cy[i] - oh / 2
        img = background.copy()
        inside = ((xx - cx[i]) / (ow / 2)) ** 2 + ((yy - cy[i]) / (oh / 2)) ** 2 <= 1  # ellipse
        tex = cv2.resize(patch, (max(1, int(ow)), max(1, int(oh))))
        ys, xs = np.nonzero(inside)
        img[ys, xs] = tex[np.clip(ys - int(y0), 0, tex.shape[0] - 1), np.clip(xs - int(x0), 0, tex.shape[1] - 1)]
        bar = (xx >= bar_x[i]) & (xx < bar_x[i] + bar_w)
        img[bar] = (60, 60, 70)
        frames[i] = img.clip(0, 255).astype(np.uint8)
        x1, y1 = max(x0, 0), max(y0, 0)
        boxes[i] = [x1, y1, min(x0 + ow, w) - x1, min(y0 + oh, h) - y1]
        absent[i] = bar_x[i] <= x0 and bar_x[i] + bar_w >= x0 + ow
    return Sequence(name, frames, boxes, absent, attributes={"synthetic": True, "seed": seed})
