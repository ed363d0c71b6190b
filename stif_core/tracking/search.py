"""The search region a tracker crops from every frame: its side in pixels and its context (crop side over the
target's sqrt(w * h)). The model keeps the crop it was trained on; a tracker that searches a smaller or larger
region at the training scale runs a copy of the network built for that crop (``network_for``), so the target
covers as many crop pixels as in training and the score grid stays centred on the crop. A region whose step
would not fit the memory available is refused before any work (``check_fits``).
"""
from __future__ import annotations

import copy
import resource
from dataclasses import dataclass, replace

import numpy as np
import psutil
import torch

from ..config import MAX_CROP_SIZE, ModelConfig
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
        if not 1 <= size <= MAX_CROP_SIZE:
            raise ValueError(f"search size {size} is not valid: must be in [1, {MAX_CROP_SIZE}] pixels")
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


def attention_cells(cfg: ModelConfig, score_size: int, frames: int) -> tuple[int, int]:
    """Query and memory cells of a step's attention (q2m; m2q is its transpose) on a ``score_size`` grid with
    ``frames`` memory frames: with TDE the fusion reads one fused memory map, else every frame's cells."""
    cells = score_size ** 2
    return cells, cells * (1 if cfg.ste else frames)


# Attention maps a step holds at once, measured on the lite model's CPU steps at crops of 481 to 961 pixels:
# PyTorch's logits, softmax and one transient; ONNX Runtime keeps both branches' maps and their intermediates.
MAPS_HELD = {"torch": 3, "onnx": 7}
USABLE = 0.8  # share of the available memory a step may take: the rest for the model, the frames, other work


def step_bytes(cfg: ModelConfig, score_size: int, frames: int, engine: str = "torch") -> int:
    """Bytes of the largest tensors a step of ``engine`` holds at once: its float32 attention maps."""
    query, memory = attention_cells(cfg, score_size, frames)
    return MAPS_HELD[engine] * 4 * query * memory


def available_bytes(device: torch.device) -> int:
    """Memory free for a step on ``device``: the GPU's free memory, else the machine's available memory, or what
    this process may still map under its address-space limit (``ulimit -v``) when that is less."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    free = psutil.virtual_memory().available
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit != resource.RLIM_INFINITY:
        free = min(free, max(0, limit - psutil.Process().memory_info().vms))
    return free


def check_fits(cfg: ModelConfig, region: SearchRegion, frames: int, engine: str, available: int) -> None:
    """``ValueError`` naming the search size, the estimate and the largest size that fits when a step's tensors
    (``step_bytes``) on ``region`` with ``frames`` memory frames exceed ``USABLE`` of ``available`` bytes."""
    usable = int(USABLE * available)
    need = step_bytes(cfg, region.score_size, frames, engine)
    if need <= usable:
        return
    step = 2 * cfg.stride
    smallest = cfg.crop_size - step * ((cfg.score_size - 3) // 2)
    fitting = [s for s in range(smallest, MAX_CROP_SIZE + 1, step)
               if step_bytes(cfg, SearchRegion.of(cfg, s).score_size, frames, engine) <= usable]
    largest = f"the largest search size that fits is {fitting[-1]}" if fitting else "no search size fits"
    query, memory = attention_cells(cfg, region.score_size, frames)
    gib = 2**30
    raise ValueError(f"search size {region.size} needs about {need / gib:.2f} GiB for a step's attention "
                     f"({query} query cells x {memory} memory cells, {engine}) and {usable / gib:.2f} GiB can be "
                     f"used ({USABLE:.0%} of the {available / gib:.2f} GiB available): {largest}")


def network_for(model: STIF, region: SearchRegion) -> STIF:
    """``model`` itself for its trained crop, else a copy (weights, hooks and all) whose backbones cut the
    region's score grid and whose cell centres sit at the same offset from the crop's corner as in training."""
    cfg = model.cfg
    if region.size == cfg.crop_size:
        return model
    twin = copy.deepcopy(model)
    twin.cfg = replace(cfg, crop_size=region.size, score_size=region.score_size)
    for part in (*twin.encoders, twin.mask_term):
        if part is not None:
            part.score_size = region.score_size
    twin.centers = cell_centers(region.score_size, twin.offset, cfg.stride, model.centers.device)
    return twin
