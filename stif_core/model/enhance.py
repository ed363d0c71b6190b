"""Feature enhancement: temporal (TDE, eqs. 2-3) and spatial (SDE, eqs. 4-7).

Our reading (docs/design.md, section 3): memory = the initial frame m_0 plus T reference frames. Eq. 2 sums
over the T reference frames (i = t-T .. t-1); eq. 3 compares each with m_0, the key of the weighting.
``include_initial=True`` is the earlier reading that also weights m_0 (its self-similarity is the largest,
so it wins). ``granularity`` picks one weight per frame (``"frame"``) or per frame and position
(``"position"``). Weights always have one entry per memory frame: an excluded m_0 gets weight 0, and m_0
alone (T = 0) gets weight 1, so F_m^T = F_m0.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import GRANULARITIES, SIMILARITIES


def temporal_weights(memory: torch.Tensor, granularity: str = "frame", similarity: str = "dot",
                     include_initial: bool = False) -> torch.Tensor:
    """Eq. 3: w_i = softmax_i(<F_mi, F_m0> / sqrt(C)), the dot product of position-aligned features, over the
    reference frames i = 1 .. N-1 (eq. 2's bounds; ``include_initial`` adds i = 0).

    memory: (B, N, C, H, W) with the initial frame at index 0.
    Returns (B, N) for ``"frame"`` (similarity averaged over the H*W positions) or (B, N, H, W); w_0 = 0 unless
    ``include_initial`` or N = 1.
    ``similarity="scaled_cosine"`` first rescales every position's feature to norm sqrt(C) (the norm of
    unit-variance features), so the logits are sqrt(C) * cos and the softmax cannot saturate on feature
    magnitude alone; ``"dot"`` is the paper's formula as written.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown temporal granularity {granularity!r}; valid: {list(GRANULARITIES)}")
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown temporal similarity {similarity!r}; valid: {list(SIMILARITIES)}")
    c = memory.shape[2]
    if similarity == "scaled_cosine":
        memory = F.normalize(memory, dim=2) * math.sqrt(c)  # (B, N, C, H, W)
    sim = (memory * memory[:, :1]).sum(2) / math.sqrt(c)  # (B, N, H, W)
    if granularity == "frame":
        sim = sim.mean((-2, -1))  # (B, N)
    if include_initial or memory.shape[1] == 1:
        return sim.softmax(dim=1)
    return torch.cat([torch.zeros_like(sim[:, :1]), sim[:, 1:].softmax(dim=1)], 1)  # w_0 = 0


def temporal_fusion(memory: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Eq. 2: F_m^T = sum_i w_i F_mi.  memory (B, N, C, H, W), weights (B, N) or (B, N, H, W) -> (B, C, H, W)."""
    w = weights[:, :, None, None, None] if weights.dim() == 2 else weights[:, :, None]  # (B, N, 1, 1|H, 1|W)
    return (w * memory).sum(1)


class TemporalEnhancement(nn.Module):
    """TDE, eqs. 2-3: no parameters; returns the fused memory and the weights."""

    def __init__(self, granularity: str = "frame", similarity: str = "dot", include_initial: bool = False):
        super().__init__()
        self.granularity, self.similarity, self.include_initial = granularity, similarity, include_initial

    def forward(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = temporal_weights(memory, self.granularity, self.similarity, self.include_initial)  # (B, N) or (B, N, H, W)
        return temporal_fusion(memory, w), w  # (B, C, H, W)


def spatial_pool(x: torch.Tensor) -> torch.Tensor:
    """C_cat(F_avg, F_max) of eqs. 4 and 6: channel-wise mean and max, (B, C, H, W) -> (B, 2, H, W)."""
    return torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)


class SpatialAttention(nn.Module):
    """SDE, eqs. 4-5 (memory, xi_1) and 6-7 (query, xi_2): xi = sigmoid(BN(f7x7(C_cat(avg, max)))); out = xi * x.

    ``norm``: the BatchNorm that CBAM's own code puts after the 7x7 conv; without it (the paper's formula as
    written) the logits of unnormalised features grow past the sigmoid's range and xi saturates at 1.
    Accepts (B, C, H, W) or (B, N, C, H, W) (each memory frame on its own). Returns (out, xi) with xi of
    shape (B, 1, H, W) or (B, N, 1, H, W).
    """

    def __init__(self, kernel_size: int = 7, norm: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=not norm)
        self.norm = nn.BatchNorm2d(1) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lead = x.shape[:-3]
        flat = x.reshape(-1, *x.shape[-3:])  # (B*N, C, H, W)
        xi = torch.sigmoid(self.norm(self.conv(spatial_pool(flat))))  # (B*N, 1, H, W)
        xi = xi.reshape(*lead, *xi.shape[-3:])
        return xi * x, xi
