"""Tracking sequences: one in-memory description shared by every reader and consumer."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass
class Sequence:
    """A video with one target.

    frames: image paths (read lazily) or an in-memory uint8 array (L, H, W, 3).
    boxes:  (L, 4) float64, x, y, w, h (top-left + size, pixels); NaN rows where the target has no box.
    absent: (L,) bool, True where the dataset marks the target absent / fully occluded / out of view.
    """

    name: str
    frames: list[Path] | np.ndarray
    boxes: np.ndarray
    absent: np.ndarray | None = None
    attributes: dict = field(default_factory=dict)
    loader: Callable[[Path], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.frames)
