"""stif_core: the STIF visual object tracker (Huang et al., Front. Phys. 2023) in PyTorch."""
from .build import build_model
from .config import PRESETS, VARIANTS, ModelConfig, make_config
from .device import resolve_device
from .model import STIF, STIFOutput

__all__ = ["PRESETS", "VARIANTS", "ModelConfig", "STIF", "STIFOutput", "build_model", "make_config",
           "resolve_device"]
