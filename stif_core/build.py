"""The public entry point: a preset and a Table 1 variant to a STIF network."""
from __future__ import annotations

from .config import make_config
from .device import resolve_device
from .model import STIF


def build_model(preset: str = "lite", variant: str = "full", device: str = "cpu", **overrides) -> STIF:
    """The public entry point: a STIF network for a preset ("paper", "lite") and a Table 1 variant
    ("baseline", "ste", "sde_q", "stif", "ste+sde_q", "full", or any "+"-joined combination of ste, sde_q, stif).
    """
    return STIF(make_config(preset, variant, **overrides)).to(resolve_device(device))
