"""Model presets and the Table 1 ablation variants."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from .options import check_options

# The choices of ModelConfig's switches; the model's modules take them from here.
BACKBONES = ("googlenet", "efficientnet_lite0", "nanotrack_v2")
GRANULARITIES = ("frame", "position")  # eq. 3: one weight per frame, or per frame and position
SIMILARITIES = ("dot", "scaled_cosine")  # eq. 3's similarity
ATTENTION_SIMILARITIES = ("dot", "cosine")  # eqs. 8-10's logits
HEAD_INITS = ("stmtrack", "kaiming")
MASK_INJECTIONS = ("first_conv", "neck")


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
    tde_includes_initial: eq. 2 also weights the initial frame (an earlier reading; off = the paper's bounds).
    sde_norm: BatchNorm after SDE's 7x7 conv (CBAM's code); off = the formula as written, which saturates.
    attention: logits of eqs. 8-10 and of the baseline read, "dot" (as written) or "cosine" (bounded:
        normalised Q and K, learned temperature).
    mask_injection: the memory mask added after the memory trunk's first conv ("first_conv", STMTrack: memory and
        query have an encoder each) or at the neck ("neck": one encoder, trunk and neck, for memory and query; the
        same appearance gives the same features on both sides, the mask's term aside, so the attention's cosine
        compares like with like).
    square_crops: every crop, in training and tracking, stretched so that the initial frame's target is square
        in it (``data.crops.square_stretch``): the head measures one shape and the box is stretched back.
    """

    backbone: str = "googlenet"
    crop_size: int = 289
    score_size: int = 25
    channels: int = 512
    head_channels: int = 256
    head_depth: int = 7
    head_init: str = "stmtrack"
    square_crops: bool = False
    memory_size: int = 3  # T reference frames; memory holds N = T + 1 frames with the initial one
    temporal: str = "frame"
    similarity: str = "dot"
    gate: bool = True
    tde_includes_initial: bool = False
    sde_norm: bool = True
    attention: str = "dot"
    mask_injection: str = "first_conv"
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
        check_options(self, "model option", MODEL_RANGES, MODEL_CHOICES)


MAX_CROP_SIZE = 4096  # pixels: a crop side beyond a 4K frame's width
MAX_SCORE_SIZE = MAX_CROP_SIZE // 8  # the grid of the largest crop at stride 8
MODEL_RANGES = {"crop_size": (1, MAX_CROP_SIZE), "score_size": (1, MAX_SCORE_SIZE), "channels": (1, 2048),
                "head_channels": (1, 2048), "head_depth": (1, 16), "memory_size": (1, 32)}
MODEL_CHOICES = {"temporal": GRANULARITIES, "similarity": SIMILARITIES, "head_init": HEAD_INITS,
                 "attention": ATTENTION_SIMILARITIES, "mask_injection": MASK_INJECTIONS,
                 "backbone": BACKBONES}

PRESETS = {
    # The paper's sizes: 289 crops, C = 512, 7-conv towers of 256 channels, T = 3.
    "paper": ModelConfig(),
    # Same modules, smaller: EfficientNet-Lite0 (ImageNet, stride 8), 161 crops -> 17 x 17, C = 128,
    # 3-conv towers of 64 channels; one encoder shared by memory and query (the mask enters after the neck), so
    # a frame costs one trunk pass and memory and query features live in one space
    # (docs/design.md, section 1). Trained from short CPU runs, so the head is He-initialised and the logits of
    # eq. 3 and eqs. 8-10 are bounded (see ModelConfig).
    "lite": ModelConfig(backbone="efficientnet_lite0", crop_size=161, score_size=17, channels=128,
                        head_channels=64, head_depth=3, head_init="kaiming", similarity="scaled_cosine",
                        attention="cosine", mask_injection="neck"),
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
    switches = parse_variant(variant)
    valid = {f.name for f in fields(ModelConfig)} - set(switches)
    unknown = sorted(set(overrides) - valid)
    if set(unknown) & set(switches):
        raise ValueError(f"model option(s) {sorted(set(unknown) & set(switches))} are the variant's switches: choose "
                         f"the variant instead (variant {variant!r} sets {switches})")
    if unknown:
        raise ValueError(f"unknown model option(s) {unknown}; valid: {sorted(valid)}")
    return replace(PRESETS[preset], **switches, **overrides)
