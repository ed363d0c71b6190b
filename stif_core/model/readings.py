"""The readings ledger: each place where the paper is ambiguous, what it says, the reading a model was trained
with, and the other reading applied to a copy of the trained model without retraining (``with_reading``), so
the same frame can be run both ways. Only readings that need no new weights can be switched here; the others
(the mask's entry point, m_0 as a further token) need a model trained with them."""
from __future__ import annotations

import copy
from dataclasses import dataclass

from torch import nn

from ..config import ATTENTION_SIMILARITIES, GRANULARITIES, SIMILARITIES
from .fusion import Attention
from .stif import STIF


@dataclass(frozen=True)
class Reading:
    where: str  # the equation or section
    paper: str  # what the paper says
    ours: str  # our reading (docs/design.md)
    switch: str  # the ModelConfig field
    values: tuple[str, str]  # the switch's two values, as text (booleans as "False", "True")


BOOLEAN = ("False", "True")
READINGS = {
    "granularity": Reading("eq. 3", "F_mi F_m0^T for two C x H x W maps, left undefined",
                           "the dot product of position-aligned features, averaged over positions: one weight per "
                           "frame (the other reading keeps one weight per position)", "temporal",
                           GRANULARITIES),
    "eq2_bounds": Reading("eq. 2", "F_m^T = sum over i = t-T .. t-1 of w_i F_mi: the T reference frames",
                          "as written: m_0 is the key, not a weighted frame (the earlier reading weighted m_0 too)",
                          "tde_includes_initial", BOOLEAN),
    "eq3_similarity": Reading("eq. 3", "softmax(F_mi F_m0^T / sqrt(C))",
                              "features rescaled to norm sqrt(C) first (scaled cosine); the other reading is the raw "
                              "dot product", "similarity", SIMILARITIES),
    "eq8_logits": Reading("eq. 8", "softmax(Q K^T / sqrt(d_k)) V",
                          "bounded logits tau * cos(Q, K) with a learned tau; the other reading is the raw dot "
                          "product", "attention", ATTENTION_SIMILARITIES),
    "gate": Reading("section 3.2.3", "\"a gating unit\" before the 3 x 3 convolution, no formula",
                    "g = sigmoid(Conv1x1[a, x]), a~ = g a + (1 - g) x; the other reading has no gate (the read is "
                    "taken whole)", "gate", BOOLEAN),
    "sde_norm": Reading("eqs. 4-7", "xi = sigmoid(f7x7(C_cat(avg, max))), no normalisation",
                        "CBAM's BatchNorm between the convolution and the sigmoid; the other reading leaves it out",
                        "sde_norm", BOOLEAN),
}


def attentions(model: STIF) -> list[Attention]:
    return [m for m in model.modules() if isinstance(m, Attention)]


def readings_for(model: STIF) -> list[str]:
    """The readings this model has and can switch without new weights."""
    names = ["eq8_logits"]
    if model.tde is not None:
        names = ["granularity", "eq2_bounds", "eq3_similarity", *names]
    if model.cfg.stif and model.cfg.gate:
        names.append("gate")
    if model.cfg.sde_norm and model.spatial_modules:
        names.append("sde_norm")
    return names


def current(model: STIF, name: str) -> str:
    """The value of the reading's switch in this model, as text."""
    return str(getattr(model.cfg, READINGS[name].switch))


def other(model: STIF, name: str) -> str:
    """The value of the switch that ``with_reading`` gives."""
    first, second = READINGS[name].values
    return second if current(model, name) == first else first


def with_reading(model: STIF, name: str) -> STIF:
    """A copy of ``model`` that computes ``name`` the other way, with the same trained weights."""
    if name not in readings_for(model):
        raise ValueError(f"reading {name!r} cannot be switched on the {model.cfg.variant} variant without new "
                         f"weights; valid: {readings_for(model)}")
    twin = copy.deepcopy(model).eval()
    if name == "granularity":
        twin.tde.granularity = other(model, name)
    elif name == "eq2_bounds":
        twin.tde.include_initial = not twin.tde.include_initial
    elif name == "eq3_similarity":
        twin.tde.similarity = other(model, name)
    elif name == "eq8_logits":
        if model.cfg.attention == "dot":
            raise ValueError("reading 'eq8_logits': a model trained with raw dot products has no temperature to "
                             "bound them with")
        for attend in attentions(twin):
            attend.similarity = "dot"
    elif name == "gate":
        for branch in (twin.fusion.memory_branch, twin.fusion.query_branch):
            branch.gate = None
    else:  # sde_norm
        for sde in twin.spatial_modules:
            sde.norm = nn.Identity()
    return twin
