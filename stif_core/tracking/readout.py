"""One tracking step's internals as a few numbers and two maps: what ``track`` records per frame and what
``health`` measures on val samples. The target is a box in crop pixels: the ground truth for ``health``, the
tracker's own box for ``track``."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..model.head import cells_in_box, score_map
from .memory import MemoryEntry


def entropy_ratio(rows: torch.Tensor) -> torch.Tensor:
    """(R, K) attention rows -> (R,) entropy divided by its maximum log K (0: one-hot, 1: uniform)."""
    p = rows.clamp(min=1e-12)
    return -(rows * p.log()).sum(1) / math.log(rows.shape[1])


def memory_target_cells(entries: list[MemoryEntry], cells: int, centers: torch.Tensor, stride: int) -> torch.Tensor:
    """(N'HW,) bool: the memory cells inside each memory frame's box, for attention over ``cells`` memory cells.
    N' = N when the attention reads every frame, else (TDE fused the frames into one map, two with the initial
    token) the initial frame's box stands for each fused map."""
    grids = cells // centers.shape[0]
    boxes = [e.box_crop for e in entries] if grids == len(entries) else [entries[0].box_crop] * grids
    return torch.cat([cells_in_box(centers, b, stride) for b in boxes])


def attention_on_target(attn: torch.Tensor, query_cells: torch.Tensor,
                        memory_cells: torch.Tensor) -> tuple[float, float, float]:
    """q2m attention (HW, N'HW) of the query cells on the target (HW,) bool -> their entropy over its maximum,
    their mass on the memory's target cells (N'HW,) bool, and the share of memory cells on the target (the mass a
    uniform read would give)."""
    reads = attn[query_cells]  # (R, N'HW)
    return (float(entropy_ratio(reads).mean()), float(reads[:, memory_cells].sum(1).mean()),
            float(memory_cells.float().mean()))


def frame_weights(weights: torch.Tensor) -> torch.Tensor:
    """Temporal weights (N,) or per position (N, H, W) -> one weight per memory frame (N,)."""
    w = weights.detach().cpu()
    return w if w.dim() == 1 else w.mean((1, 2))


def step_readout(look, centers: torch.Tensor, stride: int, target_crop: np.ndarray) -> tuple[dict, dict]:
    """One step (a ``tracker.Inspection``) with the target at ``target_crop`` (x1, y1, x2, y2 in crop pixels), read
    once: its numbers (peak score, temporal weights per memory frame, mean gate of each branch, the q2m attention's
    entropy and mass on the target, ``attention_on_target``) and its maps over the query crop's grid (H, W):
    ``read``, each query cell's q2m mass on the memory's target (where the query finds what memory knows as the
    target), and ``query_map``, SDE's xi_2 (eq. 6). Parts the variant lacks are left out of both."""
    out, n = look.output, int(math.isqrt(centers.shape[0]))
    row: dict = {"peak_score": float(score_map(out.cls, out.ctr).max())}
    maps: dict[str, np.ndarray] = {}
    if out.temporal_weights is not None:
        row["temporal_weights"] = frame_weights(out.temporal_weights[0]).numpy()  # (N,)
    for name in ("gate_memory", "gate_query"):
        if getattr(out, name) is not None:
            row[name] = float(getattr(out, name).mean())
    if out.attn_q2m is not None:
        attn = out.attn_q2m[0].cpu()  # (HW, N'HW)
        memory_cells = memory_target_cells(look.entries, attn.shape[1], centers, stride)  # (N'HW,)
        maps["read"] = attn[:, memory_cells].sum(1).reshape(n, n).numpy()
        query_cells = cells_in_box(centers, target_crop, stride)  # (HW,)
        if query_cells.any():
            row["attention_entropy"], row["attention_mass"], row["attention_uniform"] = attention_on_target(
                attn, query_cells, memory_cells)
    if out.query_spatial_map is not None:
        maps["query_map"] = out.query_spatial_map[0, 0].cpu().numpy()
    return row, maps
