"""stif_core: the STIF visual object tracker (Huang et al., Front. Phys. 2023) in PyTorch."""
from __future__ import annotations

import torch

from .config import PRESETS, VARIANTS, ModelConfig, make_config
from .model import STIF, STIFOutput

__all__ = ["PRESETS", "VARIANTS", "ModelConfig", "STIF", "STIFOutput", "build_model", "make_config",
           "resolve_device"]


def resolve_device(device: str = "auto") -> torch.device:
    """"auto" picks CUDA when present, else the CPU; "cpu" and "cuda" are taken as asked."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; valid: ['auto', 'cpu', 'cuda']")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available; use 'auto' or 'cpu'")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def build_model(preset: str = "lite", variant: str = "full", device: str = "cpu", **overrides) -> STIF:
    """The public entry point: a STIF network for a preset ("paper", "lite") and a Table 1 variant
    ("baseline", "ste", "sde_q", "stif", "ste+sde_q", "full", or any "+"-joined combination of ste, sde_q, stif).
    """
    return STIF(make_config(preset, variant, **overrides)).to(resolve_device(device))
