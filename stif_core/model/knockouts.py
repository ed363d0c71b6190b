"""Inference-time knock-outs: one part of a trained STIF switched off, without retraining, to measure what that
part contributes to the trained model (beside what training without it gives, Table 1).

``with knock_out(model, "gate_half"): ...`` runs everything inside with the part switched off, through forward
hooks that are removed on leaving; the weights are never touched. ONNX exports made inside keep the knock-out
(the engine exports a step per memory size when first needed: track inside the block).
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator

import torch

from .enhance import temporal_fusion
from .stif import STIF

KNOCKOUTS = {
    "temporal_uniform": "TDE's weights uniform over the reference frames (eq. 3 replaced by 1/T)",
    "spatial_one": "SDE's maps xi_1 and xi_2 set to one (eqs. 5 and 7 pass the features through)",
    "spatial_mean": "SDE's maps set to their own mean over the cells: the same gain everywhere, no 'where'",
    "no_q2m": "the memory branch's read zeroed: the query reads nothing from the memory (eq. 9's attention)",
    "no_m2q": "the query branch's read zeroed: the memory reads nothing from the query (eq. 10's attention)",
    "gate_half": "every gate fixed at g = 0.5 (an even blend of the read and the branch's own feature)",
    "mask_empty": "the memory masks emptied: the model is not told where the target is",
}


def uniform_weights(memory: torch.Tensor, like: torch.Tensor, include_initial: bool) -> torch.Tensor:
    """Weights of ``like``'s shape, (B, N) or (B, N, H, W): 1/T on the T reference frames and 0 on m_0
    (1/N on every frame with ``include_initial`` or N = 1). memory (B, N, C, H, W)."""
    n = memory.shape[1]
    w = torch.full_like(like, 1.0 / n if include_initial or n == 1 else 1.0 / (n - 1))
    if not include_initial and n > 1:
        w[:, 0] = 0
    return w


def knockouts_for(model: STIF) -> list[str]:
    """The knock-outs that apply to this model's variant (a baseline has no TDE, SDE, m2q read or gate)."""
    cfg, names = model.cfg, ["no_q2m", "mask_empty"]
    if cfg.ste:
        names.insert(0, "temporal_uniform")
    if cfg.ste or cfg.sde_query:
        names[-2:-2] = ["spatial_one", "spatial_mean"]
    if cfg.stif:
        names.insert(-1, "no_m2q")
        if cfg.gate:
            names.insert(-1, "gate_half")
    return sorted(names, key=list(KNOCKOUTS).index)


def hooks(model: STIF, name: str) -> list[torch.utils.hooks.RemovableHandle]:
    """Register the forward hooks of one knock-out; returns their handles."""
    if name == "temporal_uniform":
        def uniform(module, args, out):
            w = uniform_weights(args[0], out[1], module.include_initial)  # (B, N) or (B, N, H, W)
            return temporal_fusion(args[0], w), w

        return [model.tde.register_forward_hook(uniform)]
    if name == "spatial_one":
        return [sde.register_forward_hook(lambda m, args, out: (args[0], torch.ones_like(out[1])))
                for sde in model.spatial_modules]
    if name == "spatial_mean":
        def flat(module, args, out):
            xi = out[1].mean(dim=(-2, -1), keepdim=True).expand_as(out[1])  # (..., 1, H, W), one value per map
            return xi * args[0], xi

        return [sde.register_forward_hook(flat) for sde in model.spatial_modules]
    zero_read = lambda m, args, out: (torch.zeros_like(out[0]), out[1])  # noqa: E731  (read, map)
    if name == "no_q2m":
        attend = model.fusion.memory_branch.attend if model.cfg.stif else model.fusion.attend
        return [attend.register_forward_hook(zero_read)]
    if name == "no_m2q":
        return [model.fusion.query_branch.attend.register_forward_hook(zero_read)]
    if name == "gate_half":  # logits 0 -> sigmoid 0.5
        return [b.gate.register_forward_hook(lambda m, args, out: torch.zeros_like(out))
                for b in (model.fusion.memory_branch, model.fusion.query_branch)]
    return [model.mask_projection.register_forward_pre_hook(lambda m, args: (torch.zeros_like(args[0]),))]


def check_knockout(model: STIF, name: str) -> None:
    valid = knockouts_for(model)
    if name not in valid:
        raise ValueError(f"unknown knock-out {name!r} for the {model.cfg.variant} variant; valid: {valid}")


def knocked_out(model: STIF, name: str) -> STIF:
    """A copy of ``model`` with one part switched off for good (an evaluation row of its own)."""
    check_knockout(model, name)
    twin = copy.deepcopy(model)
    hooks(twin, name)
    return twin


@contextmanager
def knock_out(model: STIF, name: str | None) -> Iterator[STIF]:
    """Switch one part of ``model`` off inside the block (``None``: nothing); ``ValueError`` naming the valid
    knock-outs for this variant otherwise."""
    if name is None:
        yield model
        return
    check_knockout(model, name)
    handles = hooks(model, name)
    try:
        yield model
    finally:
        for h in handles:
            h.remove()
