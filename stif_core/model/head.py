"""Anchor-free head (paper section 3.3, STMTrack/SiamFC++): cls + ctr on one tower, reg on the other.

Cell (i, j) sits at crop pixel (offset + stride * j, offset + stride * i) with
offset = (S - 1) / 2 - (score_size // 2) * stride (48 for the paper's 289 crop and 25 x 25 map).
Regression offsets (l, t, r, b) = exp(s * x + b) * stride with learnable scalars s = 1, b = 0.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import HEAD_INITS


def grid_offset(crop_size: int, score_size: int, stride: int) -> float:
    """Crop-pixel position of cell 0."""
    return (crop_size - 1) / 2 - (score_size // 2) * stride


def cell_centers(score_size: int, offset: float, stride: int, device=None) -> torch.Tensor:
    """(H*W, 2) crop-pixel (x, y) of every cell, row-major."""
    r = offset + stride * torch.arange(score_size, dtype=torch.float32, device=device)  # (H,)
    y, x = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], 1)


def cells_in_box(centers: torch.Tensor, box_xyxy, stride: int) -> torch.Tensor:
    """(HW,) bool: the cells whose centre lies inside a crop-coordinate box x1, y1, x2, y2; for a box smaller
    than a cell that holds no centre, the cell nearest its middle (none for a box off the grid)."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    x, y = centers[:, 0], centers[:, 1]  # (HW,) each
    inside = (x >= x1) & (x <= x2) & (y >= y1) & (y <= y2)
    middle = torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2], dtype=centers.dtype, device=centers.device)
    lo, hi = centers.min(0).values - stride / 2, centers.max(0).values + stride / 2
    if not inside.any() and bool((middle >= lo).all() and (middle <= hi).all()):
        inside[((centers - middle) ** 2).sum(1).argmin()] = True
    return inside


def decode_boxes(reg: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """reg (B, 4, H, W) offsets l, t, r, b; centers (H*W, 2) -> boxes (B, H*W, 4) x1, y1, x2, y2."""
    ltrb = reg.flatten(2).transpose(1, 2)  # (B, HW, 4)
    return torch.cat([centers - ltrb[..., :2], centers + ltrb[..., 2:]], -1)


def encode_boxes(boxes: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Inverse of ``decode_boxes``: boxes (B, 4) x1, y1, x2, y2 -> offsets (B, H*W, 4) l, t, r, b."""
    lt = centers[None] - boxes[:, None, :2]  # (B, HW, 2)
    rb = boxes[:, None, 2:] - centers[None]  # (B, HW, 2)
    return torch.cat([lt, rb], -1)


def conv_tower(cin: int, channels: int, depth: int) -> nn.Sequential:
    """``depth`` 3x3 convs (cin -> channels, then channels -> channels), each followed by ReLU: a cell sees
    1 + 2 * depth cells across (7 for 3 convs)."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Conv2d(cin if i == 0 else channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class AnchorFreeHead(nn.Module):
    """y (B, 2C, H, W) -> cls logits (B, 1, H, W), ctr logits (B, 1, H, W), reg offsets (B, 4, H, W) in pixels.

    ``init="stmtrack"``: every conv N(0, 1e-4) as STMTrack does; ``"kaiming"``: towers He-initialised and
    predictors N(0, 0.01), which trains much faster from scratch in a short CPU budget.
    """

    def __init__(self, cin: int, channels: int = 256, depth: int = 7, stride: int = 8, init: str = "stmtrack"):
        super().__init__()
        if init not in HEAD_INITS:
            raise ValueError(f"unknown head init {init!r}; valid: {list(HEAD_INITS)}")
        self.stride = stride
        self.cls_tower = conv_tower(cin, channels, depth)
        self.reg_tower = conv_tower(cin, channels, depth)
        self.cls_pred = nn.Conv2d(channels, 1, 1)
        self.ctr_pred = nn.Conv2d(channels, 1, 1)
        self.reg_pred = nn.Conv2d(channels, 4, 1)
        self.reg_scale = nn.Parameter(torch.tensor(1.0))
        self.reg_bias = nn.Parameter(torch.tensor(0.0))
        self._init(init)

    def _init(self, init: str) -> None:
        preds = (self.cls_pred, self.ctr_pred, self.reg_pred)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if init == "stmtrack" or m in preds:
                    nn.init.normal_(m.weight, std=1e-4 if init == "stmtrack" else 0.01)
                else:
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.constant_(self.cls_pred.bias, -math.log(99.0))  # prior 0.01

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.cls_tower(y)  # (B, Ch, H, W)
        r = self.reg_tower(y)  # (B, Ch, H, W)
        reg = torch.exp((self.reg_scale * self.reg_pred(r) + self.reg_bias).clamp(max=6.0)) * self.stride
        return self.cls_pred(c), self.ctr_pred(c), reg  # (B,1,H,W), (B,1,H,W), (B,4,H,W)


def score_map(cls: torch.Tensor, ctr: torch.Tensor) -> torch.Tensor:
    """Inference score sigmoid(cls) * sigmoid(ctr), (B, 1, H, W)."""
    return torch.sigmoid(cls) * torch.sigmoid(ctr)
