"""The STIF network (paper Figure 1): backbones -> STE / SDE -> STIF fusion -> anchor-free head.

Memory encoding is separate from the query step: a tracker encodes each memory frame once
(``encode_memory``), caches it, and calls ``step`` with any number N >= 1 of cached frames. With a shared
trunk (``shared_trunk``) the trunk's features of a query crop also give that crop's memory entry; with a shared neck
(``shared_neck``) its F_q does, plus the mask's term.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.profiler import record_function

from .backbone import TRUNKS, Backbone, build_trunk, trunk_pass
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
    memory_spatial_map:  xi_1, (B, 1, H, W) after TDE, or (B, N, 1, H, W) per frame without TDE (eq. 4).
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
        c, neck_mask = cfg.channels, cfg.mask_injection == "neck"

        def trunk(with_mask: bool) -> nn.Module:
            return build_trunk(cfg.backbone, with_mask, cfg.pretrained, cfg.backbone_weights)

        self.trunk = trunk(False) if cfg.shared_trunk else None  # one trunk for memory and query crops
        channels = TRUNKS[cfg.backbone].out_channels  # a class attribute: no trunk built to read it
        self.memory_backbone = Backbone(None if cfg.shared_trunk else trunk(not neck_mask), channels, c,
                                        cfg.score_size, neck_mask, self.offset, cfg.stride, not cfg.shared_neck)
        self.query_backbone = Backbone(None if cfg.shared_trunk else trunk(False), channels, c, cfg.score_size)
        self.tde = TemporalEnhancement(cfg.temporal, cfg.similarity, cfg.tde_includes_initial) if cfg.ste else None
        self.sde_memory = SpatialAttention(norm=cfg.sde_norm) if cfg.ste else None
        self.sde_query = SpatialAttention(norm=cfg.sde_norm) if cfg.sde_query else None
        self.fusion = STIFFusion(c, cfg.gate, cfg.attention) if cfg.stif else BaselineRead(cfg.attention)
        self.head = AnchorFreeHead(2 * c, cfg.head_channels, cfg.head_depth, cfg.stride, cfg.head_init)
        self.register_buffer("centers", cell_centers(cfg.score_size, self.offset, cfg.stride), persistent=False)
        self.to(memory_format=torch.channels_last)

    @property
    def offset(self) -> float:
        return grid_offset(self.cfg.crop_size, self.cfg.score_size, self.cfg.stride)

    @property
    def mask_projection(self) -> nn.Conv2d:
        """The conv that turns the memory mask into features: at the neck, or inside the memory trunk."""
        if self.memory_backbone.mask_proj is not None:
            return self.memory_backbone.mask_proj
        return self.memory_backbone.trunk.mask_proj.conv

    @property
    def spatial_modules(self) -> list[nn.Module]:
        """The SDE modules this variant has (memory's, query's)."""
        return [m for m in (self.sde_memory, self.sde_query) if m is not None]

    def trunk_features(self, images: torch.Tensor) -> torch.Tensor:
        """The shared trunk on (..., 3, S, S) crops -> (..., Ct, H', W'): what both necks take."""
        if self.trunk is None:
            raise ValueError("this model has no shared trunk (shared_trunk=False): encode crops directly")
        f = trunk_pass(self.trunk, images.flatten(0, -4))  # (B*, Ct, H', W')
        return f.reshape(*images.shape[:-3], *f.shape[1:])

    def encode_memory(self, images: torch.Tensor | None, masks: torch.Tensor,
                      features: torch.Tensor | None = None) -> torch.Tensor:
        """images (B, N, 3, S, S) RGB 0-255, masks (B, N, 1, S, S) in {0, 1} -> F_m (B, N, C, H, W).
        ``features``: the shared trunk's (B, N, Ct, H', W') for these crops, when already computed."""
        b, n = masks.shape[:2]
        if features is None and self.trunk is not None:
            features = self.trunk_features(images)
        f = self.memory_backbone(None if images is None else images.flatten(0, 1), masks.flatten(0, 1),
                                 None if features is None else features.flatten(0, 1),
                                 self.query_backbone.neck if self.cfg.shared_neck else None)  # (B*N, C, H, W)
        return f.reshape(b, n, *f.shape[1:])

    def memory_basis(self, trunk: torch.Tensor | None, encoded: torch.Tensor) -> torch.Tensor | None:
        """What the memory entry of a crop already encoded as a query is built from: its F_q (B, C, H, W) when
        memory and query share the neck (only the mask's term is left to add), else the shared trunk's
        features (B, Ct, H', W'); None without a shared trunk (encode the crop with ``encode_memory``)."""
        return encoded if self.cfg.shared_neck else trunk

    def memory_from_basis(self, basis: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``memory_basis`` (B, N, ...) and masks (B, N, 1, S, S) -> F_m (B, N, C, H, W), as ``encode_memory``
        computes it."""
        if not self.cfg.shared_neck:
            return self.encode_memory(None, masks, basis)
        b, n = masks.shape[:2]
        f = self.memory_backbone.mark(basis.flatten(0, 1), masks.flatten(0, 1))  # (B*N, C, H, W)
        return f.reshape(b, n, *f.shape[1:])

    def encode_query(self, image: torch.Tensor | None, features: torch.Tensor | None = None) -> torch.Tensor:
        """image (B, 3, S, S) RGB 0-255 (or the shared trunk's ``features`` of it) -> F_q (B, C, H, W)."""
        if features is None and self.trunk is not None:
            features = self.trunk_features(image)
        return self.query_backbone(image, features=features)

    def step(self, memory: torch.Tensor, query: torch.Tensor, internals: bool = False) -> STIFOutput:
        """memory F_m (B, N, C, H, W), initial frame first; query F_q (B, C, H, W) -> head maps.

        ``internals`` selects the explicit attention path and returns every intermediate map.
        """
        out = {}
        with record_function("enhance"):  # labels for torch.profiler (``python -m stif_core bench --profile``)
            if self.tde is not None:
                memory, out["temporal_weights"] = self.tde(memory)  # (B, C, H, W)
                memory, out["memory_spatial_map"] = self.sde_memory(memory)  # eqs. 4-5
            if self.sde_query is not None:
                query, out["query_spatial_map"] = self.sde_query(query)  # eqs. 6-7
        with record_function("fusion"):
            fused = self.fusion(memory, query, explicit=internals)  # y (B, 2C, H, W)
        with record_function("head"):
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
