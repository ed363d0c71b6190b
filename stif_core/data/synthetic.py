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


def background_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(H, W, 3) float32 in [0, 255]: noise octaves under a random linear lighting gradient."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)  # (H, W) each
    gx, gy = rng.uniform(-0.4, 0.4, 2)
    light = 1 + gx * (xx - xx.mean()) + gy * (yy - yy.mean())  # (H, W)
    return (fractal_texture(rng, h, w) * light[..., None] * 180 + 20).clip(0, 255).astype(np.float32)


def synthetic_clip(n_frames: int = 60, size: tuple[int, int] = (240, 320), seed: int = 0,
                   name: str = "synthetic") -> Sequence:
    """A deterministic clip: a textured ellipse crosses the frame on a smooth path, grows by 60 %, and passes
    behind a pole at mid-clip (the frames where the pole hides it entirely, at least one from 17 frames on, are
    marked absent). Boxes are the ellipse's exact bounds, pixel (col, row) covering [col, col + 1) x [row, row + 1)."""
    rng = np.random.default_rng(seed)
    h, w = size
    background = background_image(rng, h, w)  # (H, W, 3)
    base = np.array([w, h], np.float64) * rng.uniform(0.12, 0.2, 2)  # object width, height at scale 1
    patch = fractal_texture(rng, 64, 64, octaves=3) * 255  # (64, 64, 3)
    patch[..., rng.integers(3)] = 255 - patch[..., rng.integers(3)]  # a colour unlike the background
    t = np.linspace(0, 1, n_frames)
    direction, phase = rng.choice([-1, 1]), rng.uniform(0, 2 * np.pi)
    cx = w * (0.5 + 0.3 * direction * np.sin(np.pi * (t - 0.5)))  # half-size <= 0.16 w: always inside
    cy = h * (0.5 + 0.25 * np.sin(3 * np.pi * t + phase))
    scale = 1 + 0.6 * t
    bar_w = base[0] * 1.8  # wider than the object at mid-clip (scale 1.3), so it hides it for a few frames
    bar_x = w / 2 - bar_w / 2  # a still pole the object passes at t = 0.5; frame 0 is never behind it
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    boxes = np.empty((n_frames, 4), np.float64)
    absent = np.zeros(n_frames, bool)
    yc, xc = np.mgrid[0:h, 0:w] + 0.5  # (H, W) pixel centres
    for i in range(n_frames):
        ow, oh = base * scale[i]
        boxes[i] = [cx[i] - ow / 2, cy[i] - oh / 2, ow, oh]
        u, v = (xc - boxes[i, 0]) / ow, (yc - boxes[i, 1]) / oh  # (H, W) object coordinates in [0, 1]
        inside = (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25  # (H, W) the ellipse
        img = background.copy()
        img[inside] = patch[(v[inside] * 64).astype(int).clip(0, 63), (u[inside] * 64).astype(int).clip(0, 63)]
        img[(xc >= bar_x) & (xc < bar_x + bar_w)] = (60, 60, 70)
        frames[i] = img.astype(np.uint8)
        absent[i] = bar_x <= boxes[i, 0] and bar_x + bar_w >= boxes[i, 0] + ow
    return Sequence(name, frames, boxes, absent, attributes={"synthetic": True, "seed": seed})
