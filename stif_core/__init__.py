"""stif_core: the STIF visual object tracker (Huang et al., Front. Phys. 2023) in PyTorch."""
from importlib import import_module

EXPORTS = {"PRESETS": ".config", "VARIANTS": ".config", "ModelConfig": ".config", "make_config": ".config",
           "STIF": ".model", "STIFOutput": ".model", "build_model": ".build", "resolve_device": ".device"}
__all__ = sorted(EXPORTS)


def __getattr__(name: str):
    """The exports, imported on first use: ``python -m stif_core`` starts without PyTorch, so that Ctrl-C while
    PyTorch loads reaches the command line's own handler."""
    if name not in EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(EXPORTS[name], __name__), name)
