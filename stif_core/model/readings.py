"""The readings ledger: each place where the paper is ambiguous, what it says, the reading a model was trained
with, and the other reading applied to a copy of the trained model without retraining (``with_reading``), so
the same frame can be run both ways (``READINGS``). The places where the code takes one reading that cannot be
switched on a trained model (it needs new weights, lives in the tracker, or has no working second form) are
listed with what the other reading would be (``FIXED_READINGS``)."""
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
    "gate": Reading("section 3.2", "\"a gating unit\" before the 3 x 3 convolution, no formula",
                    "g = sigmoid(Conv1x1[a, x]), a~ = g a + (1 - g) x; the other reading has no gate (the read is "
                    "taken whole)", "gate", BOOLEAN),
    "sde_norm": Reading("eqs. 4-7", "xi = sigmoid(f7x7(C_cat(avg, max))), no normalisation",
                        "CBAM's BatchNorm between the convolution and the sigmoid; the other reading leaves it out",
                        "sde_norm", BOOLEAN),
}



@dataclass(frozen=True)
class FixedReading:
    where: str  # the equation or section
    paper: str  # what the paper says
    ours: str  # the reading the code takes
    other: str  # the other reading, and why it is not switched on a trained model here


FIXED_READINGS = {
    "eq1_product": FixedReading("eqs. 1-2", "eq. 1: F_m^T = N_T(F_m) (x) F_m, an element-wise product; eq. 2: a "
                                "weighted sum over the T reference frames",
                                "eq. 2: the weights times the frames' features, summed over the frames (eq. 1 read "
                                "as its shorthand)", "a product without the sum keeps T maps, and the fusion and the "
                                "head take one"),
    "eq4_pooling_axis": FixedReading("eq. 4", "\"global average pooling and maximum pooling\" of F_m^T, "
                                     "concatenated, then a 7 x 7 convolution",
                                     "pooling over the channels (CBAM's spatial attention): two H x W maps for the "
                                     "7 x 7 convolution", "global pooling over the positions leaves one vector, "
                                     "with no positions left for a 7 x 7 convolution to weigh"),
    "eq6_symbol": FixedReading("eq. 6", "xi_2 computed from F^S_m,avg and F^S_m,max: the memory's symbols in the "
                               "query's equation", "the query's own features pooled (eq. 7 applies xi_2 to F_q)",
                               "xi_2 from the memory would put the memory's map on the query, whose target sits "
                               "elsewhere in its crop"),
    "eq9_10_roles": FixedReading("eqs. 9-10, section 3.2", "the memory branch takes F_m^S as K and V and F_q^S as "
                                 "Q; eqs. 9-10 write Attn(F_m^S, F_q^S) and Attn(F_q^S, F_m^S) without naming "
                                 "the roles", "as the text says: eq. 9 (q2m) Q = F_q^S, K = V = F_m^S; eq. 10 (m2q) "
                                 "Q = F_m^S, K = V = F_q^S", "the roles swapped: q2m and m2q exchange places and "
                                 "eq. 11's halves their grids; a trained model's two branches would be misfed"),
    "mask_injection": FixedReading("section 3.1 (silent)", "memory frames with foreground masks, as STMTrack's; "
                                   "not where the mask enters", "the lite preset adds it after the trunk, at the "
                                   "neck (`mask_injection=\"neck\"`); the paper preset at the first convolution, as "
                                   "STMTrack", "the other entry point has other weights: train a model with it "
                                   "(notebook 2 shows what the mask does)"),
    "m0_token": FixedReading("eqs. 2-3", "m_0 is the key of eq. 3; eq. 2 sums the T reference frames only",
                             "as written: m_0 reaches the fusion only through TDE's weights",
                             "m_0 also fed to the fusion as a memory frame of its own: new weights; trained on an "
                             "earlier design it did not help, and its switch was retired (docs/history.md)"),
    "memory_policy": FixedReading("section 3.1.1", "\"the T memory frames adjacent to the frame to be tracked\"",
                                  "the tracker's default keeps STMTrack's frames spread over the past "
                                  "(`memory_policy=\"stmtrack\"`, decided on train sequences: docs/design.md, "
                                  "section 8)", "the adjacent frames (`memory_policy=\"recent\"`), a switch of the "
                                  "tracker: it changes every later frame, not one step (notebooks 1 and 3 track with "
                                  "it)"),
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
