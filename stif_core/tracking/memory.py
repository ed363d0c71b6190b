"""Which past frames the tracker feeds the network: its memory policy (docs/design.md, section 8).

A policy holds the cached entries of past frames (never the initial one, which the tracker keeps) and picks the
memory of the next step. ``"recent"``: the T most recent frames, our reading of the paper's "adjacent frames".
``"stmtrack"`` (the default): the frames nearest the middles of T equal segments of the past, and the previous
frame when its score exceeds 0.6 (N <= T + 2), from a reservoir of at most 4T frames thinned evenly, so that
memory stays bounded on long videos. The default was decided on train sequences: a model that reads its memory's
masks follows the tracker's own boxes, and with only recent frames an oversized box feeds itself.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

CONFIDENT = 0.6  # STMTrack's score above which the previous frame joins the memory


@dataclass
class MemoryEntry:
    """A cached memory frame: its index, features, tracking score, and the crop and box it was encoded from."""

    frame: int
    features: torch.Tensor  # (1, C, H, W)
    score: float
    crop: np.ndarray = field(repr=False)  # (S, S, 3) uint8
    box_crop: np.ndarray = field(repr=False)  # (4,) x1, y1, x2, y2 in crop pixels


class RecentMemory:
    """The initial frame and the T most recent frames."""

    name = "recent"

    def __init__(self, t: int):
        self.t, self.most = t, t + 1  # most: the largest number of entries pick() returns
        self.held: deque[MemoryEntry] = deque(maxlen=t)

    def add(self, entry: MemoryEntry) -> None:
        self.held.append(entry)

    def pick(self, initial: MemoryEntry) -> list[MemoryEntry]:
        return [initial, *self.held]


class STMTrackMemory:
    """The initial frame, the middles of T segments of the past, and the previous frame when it scored above
    ``CONFIDENT``; the past is a reservoir of at most 4T frames, thinned evenly."""

    name = "stmtrack"

    def __init__(self, t: int):
        self.t, self.reservoir, self.most = t, 4 * t, t + 2
        self.held: deque[MemoryEntry] = deque()

    def add(self, entry: MemoryEntry) -> None:
        self.held.append(entry)
        if len(self.held) > self.reservoir:  # drop every other old entry, keep the newest
            self.held = deque(list(self.held)[:-1][::2] + [self.held[-1]])

    def pick(self, initial: MemoryEntry) -> list[MemoryEntry]:
        past = list(self.held)
        picks = [initial]
        if past:
            last = past[-1].frame
            for k in range(self.t):  # middles of T equal segments of (0, last]
                target = (k + 0.5) * last / self.t
                picks.append(min(past, key=lambda e: abs(e.frame - target)))
            if past[-1].score > CONFIDENT:
                picks.append(past[-1])
        unique = {e.frame: e for e in picks}
        return sorted(unique.values(), key=lambda e: e.frame)


MEMORY_POLICIES = {p.name: p for p in (RecentMemory, STMTrackMemory)}
DEFAULT_MEMORY_POLICY = STMTrackMemory.name


def make_memory(policy: str, t: int) -> RecentMemory | STMTrackMemory:
    """An empty memory of ``policy`` for T reference frames; ``ValueError`` naming the valid policies."""
    if policy not in MEMORY_POLICIES:
        raise ValueError(f"unknown memory policy {policy!r}; valid: {list(MEMORY_POLICIES)}")
    return MEMORY_POLICIES[policy](t)
