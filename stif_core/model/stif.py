"""The STIF network (paper Figure 1): backbones -> STE / SDE -> STIF fusion -> anchor-free head.

Memory encoding is separate from the query step: a tracker encodes each memory frame once
(``encode_memory``), caches it, and calls ``step`` with any number N >= 1 of cached frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from .backbone import Backbone, build_trunk
from .enhance import SpatialAttention, TemporalEnhancement
from .fusion import BaselineRead, STIFFusion
from .head import AnchorFreeHead, cell_centers, grid_offset

if TYPE_CHECKING:
    from ..config import ModelConfig


@dataclass
class STIFOutput:
    """Head maps, the temporal weights, and with ``internals=True`` every map the notebooks plot (None where
    the variant lacks it).

    cls, ctr:            (B, 1, H, W) logits;  reg: (B, 4, H, W) l, t, r, b offsets in crop pixels.
    temporal_weights:    (B, N) for "frame", (B, N, H, W) for "position" (eq. 3).
    memory_spatial_map:  xi_1, (B, 1, H, W) after TDE, or (B, N, 1, H, W) per frame without it (eq. 4).
    query_spatial_map:   xi_2, (B, 1, H, W) (eq. 6).
    attn_q2m:            (B, HW, N'HW) query cells reading memory cells (eq. 9; the baseline read map),
                         N' = 1 when TDE fused the memory, else N.
    attn_m2q:            (B, N'HW, HW) memory cells reading query cells (eq. 10).
    gate_memory, gate_query: (B, N', C, H, W) gate values of the two branches.
    """

    cls: torch.Tensor
    ctr: torch.Tensor
    reg: torch.Tensor
    temporal_weights: torch.Tensor | None = None
    memory_spatial_map: torch.Tensor | None = None
    query_spatial_map: torch.Tensor | None = None
    attn_q2m: torch.Tensor | None = None
    attn_m2q: torch.Tensor | None = None
    gate_memory: torch.Tensor | None = None
    gate_query: torch.Tensor | None = None


class STIF(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.memory_backbone = Backbone(
            build_trunk(cfg.backbone, True, cfg.pretrained, cfg.backbone_weights), c, cfg.score_size)
        self.query_backbone = Backbone(
            build_trunk(cfg.backbone, False, cfg.pretrained, cfg.backbone_weights), c, cfg.score_size)
        self.tde = TemporalEnhancement(cfg.temporal, cfg.similarity) if cfg.ste else None
        self.sde_memory = SpatialAttention() if cfg.ste else None
        self.sde_query = SpatialAttention() if cfg.sde_query else None
        self.fusion = STIFFusion(c, cfg.gate) if cfg.stif else BaselineRead()
        self.head = AnchorFreeHead(2 * c, cfg.head_channels, cfg.head_depth, cfg.stride, cfg.head_init)
        self.register_buffer("centers", cell_centers(cfg.score_size, self.offset, cfg.stride), persistent=False)
        self.to(memory_format=torch.channels_last)

    @property
    def offset(self) -> float:
        return grid_offset(self.cfg.crop_size, self.cfg.score_size, self.cfg.stride)

    def encode_memory(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """images (B, N, 3, S, S) RGB 0-255, masks (B, N, 1, S, S) in {0, 1} -> F_m (B, N, C, H, W)."""
        b, n = images.shape[:2]
        f = self.memory_backbone(images.flatten(0, 1), masks.flatten(0, 1))  # (B*N, C, H, W)
        return f.reshape(b, n, *f.shape[1:])

    def encode_query(self, image: torch.Tensor) -> torch.Tensor:
        """image (B, 3, S, S) RGB 0-255 -> F_q (B, C, H, W)."""
        return self.query_backbone(image)

    def step(self, memory: torch.Tensor, query: torch.Tensor, internals: bool = False) -> STIFOutput:
        """memory F_m (B, N, C, H, W), initial frame first; query F_q (B, C, H, W) -> head maps.

        ``internals`` selects the explicit attention path and returns every intermediate map.
        """
        out = {}
        if self.tde is not None:
            memory, out["temporal_weights"] = self.tde(memory)  # (B, C, H, W)
            memory, out["memory_spatial_map"] = self.sde_memory(memory)  # eqs. 4-5
        if self.sde_query is not None:
            query, out["query_spatial_map"] = self.sde_query(query)  # eqs. 6-7
        fused = self.fusion(memory, query, explicit=internals)  # y (B, 2C, H, W)
        cls, ctr, reg = self.head(fused.pop("y"))
        if not internals:  # the temporal weights cost nothing extra: trackers log them every frame
            return STIFOutput(cls, ctr, reg, temporal_weights=out.get("temporal_weights"))
        return STIFOutput(cls, ctr, reg, **out, **fused)

    def forward(self, memory_images: torch.Tensor, memory_masks: torch.Tensor, query_image: torch.Tensor,
                internals: bool = False) -> STIFOutput:
        """End to end: (B, N, 3, S, S), (B, N, 1, S, S), (B, 3, S, S) -> STIFOutput."""
        return self.step(self.encode_memory(memory_images, memory_masks), self.encode_query(query_image),
                         internals)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_table(model: STIF) -> dict[str, int]:
    """Parameters per top-level part (the demo prints it)."""
    parts = {name: count_parameters(m) for name, m in model.named_children()}
    parts["total"] = count_parameters(model)
    return parts
