"""The search region a tracker crops from every frame: its side in pixels and its context (crop side over the
target's sqrt(w * h)). The model keeps the crop it was trained on; a tracker that searches a smaller or larger
region at the training scale runs a copy of the network built for that crop (``network_for``), so the target
covers as many crop pixels as in training and the score grid stays centred on the crop.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np

from ..config import ModelConfig
from ..data.crops import CONTEXT, CropWindow
from ..model import STIF
from ..model.head import cell_centers


@dataclass(frozen=True)
class SearchRegion:
    """Crops of ``size`` pixels, side ``context`` * sqrt(w * h) around a centre, and the score grid they give."""

    size: int
    context: float
    score_size: int

    @classmethod
    def of(cls, cfg: ModelConfig, size: int | None = None) -> SearchRegion:
        """The region for crops of side ``size`` (None: the trained crop) at the scale ``cfg`` was trained at;
        the score grid loses or gains a cell per side for every 2 * stride pixels."""
        size = cfg.crop_size if size is None else size
        step = 2 * cfg.stride
        cells, rest = divmod(cfg.crop_size - size, step)
        score = cfg.score_size - 2 * cells
        if rest or score < 3:
            smallest = cfg.crop_size - step * ((cfg.score_size - 3) // 2)
            raise ValueError(f"crop size {size} does not fit this model (trained on {cfg.crop_size} crops, a "
                             f"{cfg.score_size} x {cfg.score_size} grid): give {cfg.crop_size} + or - a multiple of "
                             f"{step}, at least {smallest}")
        return cls(size, CONTEXT * size / cfg.crop_size, score)

    def window(self, center: np.ndarray, wh: np.ndarray, stretch: float = 1.0) -> CropWindow:
        """The crop window around ``center`` (x, y) for a target of size ``wh`` (w, h), frame pixels; ``stretch``
        multiplies the target's aspect ratio in the crop (``CropWindow``)."""
        side = self.context * float(np.sqrt(np.prod(wh)))
        return CropWindow(float(center[0]), float(center[1]), side, self.size, stretch)


def network_for(model: STIF, region: SearchRegion) -> STIF:
    """``model`` itself for its trained crop, else a copy (weights, hooks and all) whose backbones cut the
    region's score grid and whose cell centres sit at the same offset from the crop's corner as in training."""
    cfg = model.cfg
    if region.size == cfg.crop_size:
        return model
    twin = copy.deepcopy(model)
    twin.cfg = replace(cfg, crop_size=region.size, score_size=region.score_size)
    twin.memory_backbone.score_size = twin.query_backbone.score_size = region.score_size
    twin.centers = cell_centers(region.score_size, twin.offset, cfg.stride, model.centers.device)
    return twin
