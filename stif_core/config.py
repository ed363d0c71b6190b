"""Model presets and the Table 1 ablation variants."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from .model.enhance import GRANULARITIES, SIMILARITIES
from .model.head import HEAD_INITS


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the network's shape and behaviour.

    ste: temporal + spatial enhancement of memory (TDE eqs. 2-3, SDE eqs. 4-5).
    sde_query: spatial enhancement of the query (eqs. 6-7).
    stif: interactive fusion (eqs. 8-11); off = STMTrack's memory read.
    temporal: eq. 3 granularity, "frame" (one weight per frame) or "position".
    similarity: eq. 3 on raw features ("dot", as written) or on features rescaled to norm sqrt(C)
        ("scaled_cosine"): raw dot products saturate the softmax at the initial frame.
    gate: our reading of the paper's gating unit in the fusion (on) or a plain branch (off).
    """

    backbone: str = "googlenet"
    crop_size: int = 289
    score_size: int = 25
    channels: int = 512
    head_channels: int = 256
    head_depth: int = 7
    head_init: str = "stmtrack"
    memory_size: int = 3  # T reference frames; memory holds N = T + 1 frames with the initial one
    temporal: str = "frame"
    similarity: str = "dot"
    gate: bool = True
    ste: bool = True
    sde_query: bool = True
    stif: bool = True
    pretrained: bool = True
    backbone_weights: str | None = None  # local file for googlenet (torchvision inception_v3_google)

    @property
    def stride(self) -> int:
        return 8

    @property
    def variant(self) -> str:
        return variant_name(self.ste, self.sde_query, self.stif)

    def __post_init__(self):
        if self.temporal not in GRANULARITIES:
            raise ValueError(f"unknown temporal granularity {self.temporal!r}; valid: {list(GRANULARITIES)}")
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"unknown temporal similarity {self.similarity!r}; valid: {list(SIMILARITIES)}")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"unknown head_init {self.head_init!r}; valid: {list(HEAD_INITS)}")


PRESETS = {
    # The paper's sizes: 289 crops, C = 512, 7-conv towers of 256 channels, T = 3.
    "paper": ModelConfig(),
    # Same modules, smaller: EfficientNet-Lite0 (ImageNet, stride 8), 161 crops -> 17 x 17, C = 128,
    # 3-conv towers of 128 channels; sized for >= 25 FPS end-to-end tracking on a 2-core CPU. Trained from
    # short CPU runs, so the head is He-initialised and eq. 3 uses the scaled cosine (see ModelConfig).
    "lite": ModelConfig(backbone="efficientnet_lite0", crop_size=161, score_size=17, channels=128,
                        head_channels=128, head_depth=3, head_init="kaiming", similarity="scaled_cosine"),
}

SWITCHES = ("ste", "sde_q", "stif")
VARIANTS = {  # the six rows of the paper's Table 1
    "baseline": (),
    "ste": ("ste",),
    "sde_q": ("sde_q",),
    "stif": ("stif",),
    "ste+sde_q": ("ste", "sde_q"),
    "full": ("ste", "sde_q", "stif"),
}


def variant_name(ste: bool, sde_query: bool, stif: bool) -> str:
    """Canonical name of a switch combination ("baseline", "ste+sde_q", "full", ...)."""
    on = tuple(s for s, flag in zip(SWITCHES, (ste, sde_query, stif)) if flag)
    for name, switches in VARIANTS.items():
        if switches == on:
            return name
    return "+".join(on)


def parse_variant(name: str) -> dict:
    """A Table 1 name or any "+"-joined combination of ste, sde_q, stif -> the three switches."""
    if name in VARIANTS:
        on = set(VARIANTS[name])
    else:
        on = set(name.split("+"))
        unknown = on - set(SWITCHES)
        if unknown or not name:
            raise ValueError(f"unknown variant {name!r}; valid: {list(VARIANTS)} or any '+'-joined "
                             f"combination of {list(SWITCHES)}")
    return {"ste": "ste" in on, "sde_query": "sde_q" in on, "stif": "stif" in on}


def make_config(preset: str = "lite", variant: str = "full", **overrides) -> ModelConfig:
    """The preset's config with the variant's switches and any field overrides."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {list(PRESETS)}")
    valid = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(f"unknown model option(s) {unknown}; valid: {sorted(valid)}")
    return replace(PRESETS[preset], **parse_variant(variant), **overrides)
