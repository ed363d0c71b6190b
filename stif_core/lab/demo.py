"""A short tour of the network: parts, parameter counts, a module-by-module shape trace and the shapes of every
internal map."""
from __future__ import annotations

import torch

from .. import build_model
from ..config import VARIANTS
from ..model import count_parameters, parameter_table
from ..model.trace import format_trace, shape_trace


def describe(preset: str, memory_frames: int = 4, seed: int = 0) -> None:
    """Print the parts of the full model, the parameters of every Table 1 variant and internals' shapes."""
    torch.manual_seed(seed)
    model = build_model(preset, "full").eval()
    cfg = model.cfg
    print(f"== preset {preset!r}: backbone {cfg.backbone}, crop {cfg.crop_size}, C = {cfg.channels}, "
          f"score map {cfg.score_size}x{cfg.score_size}, head {cfg.head_depth} x {cfg.head_channels}")
    for name, n in parameter_table(model).items():
        print(f"  {name:<16} {n:>12,} parameters")
    print("  variants (Table 1):", ", ".join(
        f"{v} {count_parameters(build_model(preset, v, pretrained=False)) / 1e6:.2f} M" for v in VARIANTS))
    s, n = cfg.crop_size, memory_frames
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(1, n, 3, s, s, generator=g) * 255  # (B, N, 3, S, S)
    masks = torch.zeros(1, n, 1, s, s)
    masks[..., s // 3: 2 * s // 3, s // 3: 2 * s // 3] = 1  # (B, N, 1, S, S)
    query = torch.rand(1, 3, s, s, generator=g) * 255  # (B, 3, S, S)
    print("  one forward pass, module by module (batch 1, N = 4 memory frames):")
    print("\n".join("  " + line for line in format_trace(shape_trace(model, images, masks, query, depth=2,
                                                                      internals=True)).splitlines()))
    with torch.no_grad():
        out = model(images, masks, query, internals=True)
    print("  outputs and internals:")
    for field, value in vars(out).items():
        print(f"  {field:<19} {tuple(value.shape) if value is not None else None}")
