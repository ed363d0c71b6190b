"""Training samples (STMTrack style): an initial frame, T reference frames before the query and the query, in
time order, cropped with scale jitter and centre shift, mean-colour padding, foreground masks on memory
frames, and a share of negative pairs. Sample k depends only on (seed, k), so runs repeat exactly whatever
the number of workers, and a resumed run draws the same samples as an uninterrupted one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from .crops import CONTEXT, CropWindow, box_mask, crop, to_chw, xywh_to_xyxy
from .sequences import AnnotationError, FrameError, Sequence


@dataclass(frozen=True)
class SamplingConfig:
    crop_size: int = 161
    references: int = 3  # T
    max_gap: int = 30  # references and query lie within this many frames
    scale_jitter: float = 1.3  # side *= U(1/j, j)
    shift: float = 0.4  # centre shift up to shift * side / 2 (query); a quarter of it for memory frames
    negative_ratio: float = 0.2  # share of pairs whose query does not hold the target
    brightness: float = 0.2  # query and memory intensities *= U(1 - b, 1 + b)


def valid_frames(seq: Sequence) -> np.ndarray:
    """Indices of frames with a usable box (finite, positive size, not marked absent)."""
    b = seq.boxes
    ok = np.isfinite(b).all(1) & (b[:, 2] > 1) & (b[:, 3] > 1)
    if seq.absent is not None:
        ok &= ~seq.absent
    return np.flatnonzero(ok)


class TrackingSamples(Dataset):
    """``length`` deterministic samples from ``sequences``; item k is a dict of tensors (see ``sample``)."""

    def __init__(self, sequences: list[Sequence], cfg: SamplingConfig, length: int, seed: int = 0):
        self.sequences = [s for s in sequences if len(valid_frames(s)) > cfg.references + 1]
        if not self.sequences:
            raise ValueError("no training sequence has enough frames with valid boxes")
        self.valid = [valid_frames(s) for s in self.sequences]
        counts = np.array([len(v) for v in self.valid], dtype=np.float64)
        self.sequence_p = counts / counts.sum()  # sequences drawn in proportion to their valid frames
        self.cfg, self.length, self.seed = cfg, length, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, k: int) -> dict:
        """A sample; a bad one (unreadable frame, broken box) is replaced by the next attempt and counted."""
        for attempt in range(10):
            rng = np.random.default_rng([self.seed, k, attempt])
            try:
                item = self.sample(rng)
                item["skipped"] = torch.tensor(attempt)
                return item
            except (FrameError, AnnotationError, ValueError):
                continue
        raise RuntimeError(f"sample {k}: 10 attempts in a row hit bad data")

    def pick_frames(self, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        """A sequence (weighted by valid frames) and sorted frame ids: initial, T references, query."""
        s = int(rng.choice(len(self.sequences), p=self.sequence_p))
        valid, t = self.valid[s], self.cfg.references
        q = int(rng.integers(t + 1, len(valid)))  # position of the query among the valid frames
        lo = max(1, q - self.cfg.max_gap)
        refs = np.sort(rng.choice(np.arange(lo, q), size=t, replace=q - lo < t))
        first = int(rng.integers(0, refs[0])) if refs[0] > 0 else 0
        return s, valid[np.concatenate([[first], refs, [q]])]

    def jittered_window(self, box: np.ndarray, rng: np.random.Generator, shift: float) -> CropWindow:
        c = self.cfg
        x, y, w, h = box
        side = CONTEXT * np.sqrt(w * h) * np.exp(rng.uniform(-1, 1) * np.log(c.scale_jitter))
        dx, dy = rng.uniform(-1, 1, 2) * shift * side / 2
        return CropWindow(x + w / 2 + dx, y + h / 2 + dy, side, c.crop_size)

    def view(self, seq: Sequence, i: int, rng: np.random.Generator, shift: float) -> tuple[np.ndarray, np.ndarray]:
        """Frame i cropped around its box: (3, S, S) uint8 and the box in crop coordinates (x1, y1, x2, y2)."""
        window = self.jittered_window(seq.boxes[i], rng, shift)
        image = crop(seq.frame(i), window).astype(np.float32)
        image *= rng.uniform(1 - self.cfg.brightness, 1 + self.cfg.brightness)
        return to_chw(image.clip(0, 255).astype(np.uint8)), window.to_crop(xywh_to_xyxy(seq.boxes[i]))

    def sample(self, rng: np.random.Generator) -> dict:
        """memory_images (N, 3, S, S) uint8, memory_masks (N, 1, S, S) float, query_image (3, S, S) uint8,
        query_box (4,) x1, y1, x2, y2 in query-crop pixels, positive () bool."""
        s, ids = self.pick_frames(rng)
        seq = self.sequences[s]
        memory = [self.view(seq, int(i), rng, self.cfg.shift / 4) for i in ids[:-1]]
        positive = rng.random() >= self.cfg.negative_ratio
        if positive:
            query, box = self.view(seq, int(ids[-1]), rng, self.cfg.shift)
        else:  # a frame of another sequence, cropped around that sequence's own target
            others = [o for o in range(len(self.sequences)) if o != s] or [s]
            o = int(rng.choice(others))
            other = self.sequences[o]
            query, box = self.view(other, int(rng.choice(self.valid[o])), rng, self.cfg.shift)
        size = self.cfg.crop_size
        return {
            "memory_images": torch.from_numpy(np.stack([m[0] for m in memory])),
            "memory_masks": torch.from_numpy(np.stack([box_mask(m[1], size)[None] for m in memory])),
            "query_image": torch.from_numpy(query),
            "query_box": torch.from_numpy(box.astype(np.float32)),
            "positive": torch.tensor(bool(positive)),
        }
