"""Spatio-temporal interactive fusion (STIF, eqs. 8-11) and STMTrack's memory read (the ablation baseline).

Tokens are grid cells; single head, no projections, d_k = C (docs/design.md, section 5).
``similarity="cosine"`` bounds the logits: L2-normalised Q and K times a learned temperature (on
unnormalised features Q K^T / sqrt(C) grows with the feature norm and the softmax turns one-hot);
``"dot"`` is eq. 8 as written. Our reading of the paper's gating unit: g = sigmoid(Conv1x1([a, x])),
gated = g * a + (1 - g) * x, where x is that branch's Q input; ``gate=False`` drops it (y = Conv3x3(a)).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ATTENTION_SIMILARITIES


def tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) or (B, N, C, H, W) -> (B, L, C) with L = (N) * H * W cells, frame-major."""
    if x.dim() == 4:
        return x.flatten(2).transpose(1, 2)
    b, n, c, h, w = x.shape
    return x.permute(0, 1, 3, 4, 2).reshape(b, n * h * w, c)


def untokens(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Inverse of ``tokens``: (B, N * H * W, C) -> (B, N, C, H, W)."""
    b, l, c = t.shape
    return t.reshape(b, l // (h * w), h, w, c).permute(0, 1, 4, 2, 3)


INITIAL_TEMPERATURE = 10.0  # cosine logits in [-10, 10] at the start: neither uniform nor one-hot over 289 cells


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, explicit: bool = False,
              scale: torch.Tensor | float | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Eq. 8: softmax(Q K^T * scale) V, scale = 1 / sqrt(d_k) by default.
    q (B, Lq, C), k and v (B, Lk, C) -> (B, Lq, C), map (B, Lq, Lk).

    The fast path uses fused ``scaled_dot_product_attention`` and returns no map; ``explicit`` returns it.
    """
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    if not explicit:
        if isinstance(scale, torch.Tensor):  # fused kernels take a float scale: fold it into q
            return F.scaled_dot_product_attention(q * (scale * math.sqrt(q.shape[-1])), k, v), None
        return F.scaled_dot_product_attention(q, k, v, scale=scale), None
    attn = (q @ k.transpose(1, 2) * scale).softmax(-1)  # (B, Lq, Lk)
    return attn @ v, attn


class Attention(nn.Module):
    """Eq. 8 with the switch of the logits: ``"dot"`` Q K^T / sqrt(C) as written, or ``"cosine"``
    tau * cos(Q, K) with a learned temperature tau = exp(log_tau) (values V unchanged)."""

    def __init__(self, similarity: str = "dot"):
        super().__init__()
        if similarity not in ATTENTION_SIMILARITIES:
            raise ValueError(f"unknown attention similarity {similarity!r}; valid: {list(ATTENTION_SIMILARITIES)}")
        self.similarity = similarity
        if similarity == "cosine":
            self.log_tau = nn.Parameter(torch.tensor(math.log(INITIAL_TEMPERATURE)))

    def forward(self, q: torch.Tensor, kv: torch.Tensor,
                explicit: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """q (B, Lq, C), kv (B, Lk, C) -> (B, Lq, C), map (B, Lq, Lk) or None."""
        if self.similarity == "dot":
            return attention(q, kv, kv, explicit)
        qn, kn = F.normalize(q, dim=-1), F.normalize(kv, dim=-1)  # (B, L, C) unit rows
        return attention(qn, kn, kv, explicit, scale=self.log_tau.exp())


class GatedBranch(nn.Module):
    """One STIF branch, eq. 9 or 10: y = Conv3x3(gate(Attn(Q=x, K=V=other), x))."""

    def __init__(self, channels: int, gate: bool = True, similarity: str = "dot"):
        super().__init__()
        self.attend = Attention(similarity)
        self.gate = nn.Conv2d(2 * channels, channels, 1) if gate else None
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, other: torch.Tensor,
                explicit: bool = False) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """x (B, C, H, W) or (B, N, C, H, W) gives Q; other gives K = V. Returns y (B, C, H, W), map, gate.

        With N frames in x, each frame's output is computed and the gated frames are averaged.
        """
        a, attn = self.attend(tokens(x), tokens(other), explicit)  # (B, Lx, C)
        a = untokens(a, *x.shape[-2:])  # (B, N', C, H, W)
        xs = x.reshape(a.shape)  # (B, N', C, H, W)
        g = None
        if self.gate is not None:
            g = torch.sigmoid(self.gate(torch.cat([a, xs], 2).flatten(0, 1))).reshape(a.shape)  # (B, N', C, H, W)
            a = g * a + (1 - g) * xs
        y = self.conv(a.mean(1))  # (B, C, H, W)
        return y, attn, g


class STIFFusion(nn.Module):
    """Eqs. 9-11: y1 from the memory branch (Q = F_q^S, K = V = F_m^S), y2 from the query branch
    (Q = F_m^S, K = V = F_q^S); y = concat(y1, y2) -> (B, 2C, H, W).
    """

    def __init__(self, channels: int, gate: bool = True, similarity: str = "dot"):
        super().__init__()
        self.memory_branch = GatedBranch(channels, gate, similarity)
        self.query_branch = GatedBranch(channels, gate, similarity)

    def forward(self, memory: torch.Tensor, query: torch.Tensor, explicit: bool = False) -> dict:
        """memory (B, C, H, W) fused by TDE, or (B, N, C, H, W); query (B, C, H, W)."""
        y1, attn_q2m, g1 = self.memory_branch(query, memory, explicit)  # attn (B, HW, N'HW)
        y2, attn_m2q, g2 = self.query_branch(memory, query, explicit)  # attn (B, N'HW, HW)
        return {"y": torch.cat([y1, y2], 1), "attn_q2m": attn_q2m, "attn_m2q": attn_m2q,
                "gate_memory": g1, "gate_query": g2}


class BaselineRead(nn.Module):
    """STMTrack's read (Table 1, row 1): w = softmax over all memory cells of F_m^T F_q / sqrt(C);
    read = F_m w; y = concat(read, F_q) -> (B, 2C, H, W). ``similarity`` as in the fusion.
    """

    def __init__(self, similarity: str = "dot"):
        super().__init__()
        self.attend = Attention(similarity)

    def forward(self, memory: torch.Tensor, query: torch.Tensor, explicit: bool = False) -> dict:
        read, attn = self.attend(tokens(query), tokens(memory), explicit)  # (B, HW, C)
        read = untokens(read, *query.shape[-2:])[:, 0]  # (B, C, H, W)
        return {"y": torch.cat([read, query], 1), "attn_q2m": attn, "attn_m2q": None,
                "gate_memory": None, "gate_query": None}
