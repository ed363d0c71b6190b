"""The STIF network (paper Figure 1): encoders -> STE / SDE -> STIF fusion -> anchor-free head.

Memory encoding is separate from the query step: a tracker encodes each memory frame once
(``encode_memory``), caches it, and calls ``step`` with any number N >= 1 of cached frames. The preset composes the
encoders: with the mask at the neck (lite) one encoder serves memory and query, and the memory adds the mask's term
(``MaskTerm``); with the mask at the trunk's first conv (paper) memory and query have an encoder each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.profiler import record_function

from .backbone import Encoder, MaskTerm, build_trunk
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

        def encoder(with_mask: bool) -> Encoder:
            return Encoder(build_trunk(cfg.backbone, with_mask, cfg.pretrained, cfg.backbone_weights), c,
                           cfg.score_size)

        # built memory side first, so that a seed initialises the same weights as it did for the shipped models
        if neck_mask:  # memory shares the query's encoder and adds the mask's term
            trunk = build_trunk(cfg.backbone, False, cfg.pretrained, cfg.backbone_weights)
            self.mask_term, self.memory_encoder = MaskTerm(c, cfg.score_size, self.offset, cfg.stride), None
            self.query_encoder = Encoder(trunk, c, cfg.score_size)
        else:
            self.mask_term, self.memory_encoder = None, encoder(True)
            self.query_encoder = encoder(False)
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
        """The conv that turns the memory mask into features: the mask term's, or inside the memory trunk."""
        if self.mask_term is not None:
            return self.mask_term.proj
        return self.memory_encoder.trunk.mask_proj.conv

    @property
    def encoders(self) -> list[Encoder]:
        """The encoders this preset has (the query's first)."""
        return [e for e in (self.query_encoder, self.memory_encoder) if e is not None]

    @property
    def spatial_modules(self) -> list[nn.Module]:
        """The SDE modules this variant has (memory's, query's)."""
        return [m for m in (self.sde_memory, self.sde_query) if m is not None]

    def encode_memory(self, images: torch.Tensor | None, masks: torch.Tensor,
                      features: torch.Tensor | None = None) -> torch.Tensor:
        """images (B, N, 3, S, S) RGB 0-255, masks (B, N, 1, S, S) in {0, 1} -> F_m (B, N, C, H, W).
        ``features``: the shared encoder's trunk features (B, N, Ct, H', W') of these crops, when already computed
        (a feature cache); a memory encoder of its own takes the masks inside its trunk, so it needs the crops."""
        if self.memory_encoder is not None:
            if images is None:
                raise ValueError("this model's memory encoder takes the masks inside its trunk (mask_injection="
                                 "'first_conv'): it needs the crops, not cached features")
            return self.memory_encoder(images, masks)  # (B, N, C, H, W)
        return self.mask_term(self.query_encoder(images, features=features), masks)  # (B, N, C, H, W)

    def trunk_features(self, images: torch.Tensor) -> torch.Tensor:
        """(..., 3, S, S) crops -> the shared encoder's trunk features (..., Ct, H', W'): what a feature cache holds
        and ``encode_memory`` / ``encode_query`` take as ``features``."""
        if self.memory_encoder is not None:
            raise ValueError("trunk features serve memory and query only where they share one encoder "
                             "(mask_injection='neck', the lite preset); this model's memory trunk takes the masks")
        return self.query_encoder.features(images)

    def encode_query(self, image: torch.Tensor | None, features: torch.Tensor | None = None) -> torch.Tensor:
        """image (B, 3, S, S) RGB 0-255 (or its trunk ``features``) -> F_q (B, C, H, W)."""
        return self.query_encoder(image, features=features)

    def remember(self, image: torch.Tensor, mask: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """F_m (B, C, H, W) of a crop (B, 3, S, S) with its mask (B, 1, S, S) that was just encoded as the query
        F_q ``query`` (B, C, H, W): where memory shares the query's encoder only the mask's term is added."""
        if self.mask_term is not None:
            return self.mask_term(query, mask)
        return self.encode_memory(image[:, None], mask[:, None])[:, 0]

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
