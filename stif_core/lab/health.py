"""Health of a trained model's internals on real frames: ``python -m stif_core health --checkpoint NAME``.

An attention figure of a degenerate model shows an artefact, not the model's reading. This report measures, on
samples of real sequences, what the notebooks' figures would show: spatial maps (eqs. 4-7) saturated at 1,
cross-attention (eq. 8) one-hot or uniform and whether it reads the target, temporal weights (eq. 3) pinned to
one frame, whether the score map peaks on the target, whether the chosen cell's box fits the target (its
aspect ratio and centre, before the tracker's smoothing, and again with every crop of the sample turned by
90 degrees: a model that measures the target's extent errs alike, one that recalls shapes from appearance
errs more), and whether a reference frame that a drifted tracker
stored (cropped around a box moved off the target) loses its temporal weight. Each sample is laid out as a
perfect tracker would see it: the memory is frame 0 and the T frames before the query, each cropped around its
ground-truth box; the query is cropped around the previous frame's ground-truth box.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.crops import xywh_to_xyxy, xyxy_to_xywh
from ..data.sequences import Sequence
from ..evaluation.metrics import normalized_center_error
from ..evaluation.shape import log_aspect_error
from ..model import STIF
from ..model.head import cells_in_box, score_map
from ..tracking.readout import attention_on_target, entropy_ratio, frame_weights, memory_target_cells
from ..tracking.tracker import STIFTracker

SATURATED = 0.99  # a spatial-map cell above this passes its feature through unchanged


@dataclass(frozen=True)
class Bounds:
    """The bounds a healthy model keeps (docs/design.md, sections 3-5: what a degenerate model showed)."""

    saturated_share: float = 0.5  # share of spatial-map cells above 0.99: less than this
    entropy_range: tuple[float, float] = (0.1, 0.95)  # attention entropy / its maximum
    peak_score: float = 0.3  # median peak score: at least this
    peak_on_target: float = 0.8  # share of samples whose peak cell lies on the target: at least this
    weight_spread: float = 0.02  # std over samples of the first weighted frame's weight: at least this (not pinned)
    largest_weight: float = 0.9  # mean over samples of the largest temporal weight: below this (not one-hot)
    drifted_weight: float = 0.5  # median weight of a drifted reference / the clean references' mean: below this
    aspect_error: float = 0.2  # median |log(aspect / true aspect)| of the chosen cell's box: at most this
    center_error: float = 0.2  # median centre error, each axis over the target's size on it: at most this
    turned_aspect_error: float = 0.2  # the aspect error with the sample turned by 90 degrees: at most this
    # fewer samples give no verdict: a share is then known to 0.05 at best, and a std over n samples is itself
    # uncertain by about 1 / sqrt(2 (n - 1)) of its value, 16% at 20
    min_samples: int = 20


@dataclass(frozen=True)
class Badge:
    """A verdict printed above a figure: whether the map can be read, and why not."""

    ok: bool
    text: str

    def __str__(self) -> str:
        return f"[{'ok' if self.ok else 'WARNING'}] {self.text}"


def map_badge(name: str, xi: torch.Tensor, bounds: Bounds = Bounds()) -> Badge:
    """A spatial map (eqs. 5, 7), values in [0, 1]: saturated (most cells above 0.99: every feature passes
    unchanged), flat (std below 0.01: the map weights every cell alike), or readable."""
    xi = xi.detach().float().flatten()
    share = float((xi > SATURATED).float().mean())
    if share >= bounds.saturated_share:
        return Badge(False, f"{name}: {share:.0%} of cells above {SATURATED}: saturated, this map shows nothing "
                            "(every feature passes through unchanged)")
    if float(xi.std()) < 0.01:
        return Badge(False, f"{name}: nearly flat (std {float(xi.std()):.4f}): it weights every cell alike and "
                            "shows nothing about where the target is")
    return Badge(True, f"{name}: values {float(xi.min()):.2f} to {float(xi.max()):.2f}, "
                       f"{share:.0%} of cells saturated")


def attention_badge(name: str, rows: torch.Tensor, bounds: Bounds = Bounds()) -> Badge:
    """Attention rows (R, K) of eq. 8: one-hot (entropy below ``entropy_range[0]`` of its maximum), near
    uniform (above ``entropy_range[1]``), or readable."""
    ratio = float(entropy_ratio(rows.detach().float()).mean())
    lo, hi = bounds.entropy_range
    if ratio < lo:
        return Badge(False, f"{name}: entropy {ratio:.2f} of its maximum: one-hot, each cell reads a single cell "
                            "(the map shows the argmax, not a distribution)")
    if ratio > hi:
        return Badge(False, f"{name}: entropy {ratio:.2f} of its maximum: nearly uniform, it reads everything "
                            "alike and shows nothing")
    return Badge(True, f"{name}: entropy {ratio:.2f} of its maximum (0 one-hot, 1 uniform)")


def weights_badge(weights: torch.Tensor, first: int = 1, bounds: Bounds = Bounds()) -> Badge:
    """Temporal weights (N,) of eq. 3 over the weighted frames ``first`` ..: one frame takes nearly all
    (above ``largest_weight``), or they are spread."""
    w = weights.detach().float().flatten()[first:]
    top = float(w.max())
    if top >= bounds.largest_weight:
        return Badge(False, f"temporal weights: one frame takes {top:.2f}: pinned, the others barely count")
    return Badge(True, f"temporal weights: largest {top:.2f} over {len(w)} frames")


def attribution_badge(total: float, delta: float, tolerance: float = 0.1) -> Badge:
    """Integrated gradients' completeness: a gap between the attributions' sum and f(x) - f(x') above ``tolerance``
    of it (or an f(x) - f(x') near zero) means the map explains little."""
    gap = abs(total - delta)
    if abs(delta) < 1e-3:
        return Badge(False, f"attribution: f(x) - f(x') = {delta:.4f}: nothing to explain, the map is noise")
    if gap > tolerance * abs(delta):
        return Badge(False, f"attribution: completeness gap {gap:.3f} is {gap / abs(delta):.0%} of f(x) - f(x') "
                            f"= {delta:.3f}: more steps or another baseline before reading the map")
    return Badge(True, f"attribution: completeness gap {gap:.3f} ({gap / abs(delta):.0%} of f(x) - f(x'))")


def sample_frames(seq: Sequence, n: int, t: int) -> list[int]:
    """Up to ``n`` query frames spread over the sequence, the target visible in each and the T + 1 frames before."""
    visible = np.isfinite(seq.boxes).all(1)  # (L,)
    if seq.absent is not None:
        visible &= ~seq.absent
    ok = [i for i in range(t + 1, len(seq)) if visible[i - t - 1:i + 1].all()]
    return [ok[k] for k in np.linspace(0, len(ok) - 1, min(n, len(ok))).astype(int)] if ok else []


def drifted_box(box: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The box (x, y, w, h) a drifted tracker would hold: moved two sides away, towards the most room in a frame
    of ``shape`` (H, W)."""
    x, y, w, h = box
    room = {(0, -1): x, (0, 1): shape[1] - x - w, (1, -1): y, (1, 1): shape[0] - y - h}  # (axis, sign) -> px
    axis, sign = max(room, key=lambda k: room[k] / box[2 + k[0]])
    moved = np.array(box, dtype=np.float64)
    moved[axis] += sign * 2 * box[2 + axis]
    return moved


def weight_of_a_drifted_frame(tracker: STIFTracker, seq: Sequence, frame: int, entries: list, first: int) -> float:
    """The temporal weight of the middle reference frame replaced by a drifted tracker's entry, over the clean
    ones' mean."""
    k = (first + len(entries)) // 2
    j = entries[k].frame
    image = seq.frame(j)  # (H, W, 3)
    bad = tracker.entry_from_frame(j, image, drifted_box(seq.boxes[j], image.shape[:2]))
    w = tracker.inspect(seq.frame(frame), entries[:k] + [bad] + entries[k + 1:]).output.temporal_weights[0]
    frames = frame_weights(w)[first:]  # (N - first,)
    clean = torch.cat([frames[:k - first], frames[k - first + 1:]])
    return float(frames[k - first] / clean.mean())


def aspect_error(w: float, h: float, true_box: np.ndarray) -> float:
    """|log((w / h) / (true w / true h))| of one box (``evaluation.shape.log_aspect_error``)."""
    return abs(float(log_aspect_error(np.array([w, h]), true_box[2:])))


def turned_aspect_error(tracker: STIFTracker, look, true_box: np.ndarray) -> float:
    """The aspect error of the chosen cell's box when every crop of the sample is turned by 90 degrees, the box
    turned back and mapped out of the (upright sample's) crop before it is compared."""
    turn = lambda a: np.ascontiguousarray(a.transpose(1, 0, 2))  # noqa: E731  (S, S, 3) x <-> y
    entries = [tracker.make_entry(e.frame, turn(e.crop), e.box_crop[[1, 0, 3, 2]]) for e in look.entries]
    query = torch.as_tensor(turn(look.query_crop), device=tracker.device).permute(2, 0, 1).float()[None]
    encoded = tracker.engine.query(query)  # (1, C, H, W)
    out = tracker.engine.step(torch.stack([e.features for e in entries], 1), encoded)
    upright = tracker.wh
    tracker.wh = upright[::-1].copy()  # the scale / ratio penalty compares with the turned previous box
    try:
        box = tracker.select(out, look.window).box_crop  # turned x1, y1, x2, y2
    finally:
        tracker.wh = upright
    raw = xyxy_to_xywh(look.window.to_frame(box[[1, 0, 3, 2]]))  # turned back, then out of the (stretched) crop
    return aspect_error(raw[2], raw[3], true_box)


@torch.no_grad()
def measure(model: STIF, seq: Sequence, frame: int) -> dict[str, float]:
    """The internals of one sample (see the module docstring)."""
    t = model.cfg.memory_size
    tracker = STIFTracker(model)
    tracker.init(seq.frame(0), seq.boxes[0])
    entries = [tracker.initial] + [tracker.entry_from_frame(j, seq.frame(j), seq.boxes[j])
                                   for j in range(frame - t, frame)]
    prev = seq.boxes[frame - 1]
    tracker.center, tracker.wh = prev[:2] + prev[2:] / 2, prev[2:].copy()
    look = tracker.inspect(seq.frame(frame), entries)
    out, centers, stride = look.output, model.centers.cpu(), model.cfg.stride
    true_box = seq.boxes[frame]
    truth = cells_in_box(centers, look.window.to_crop(xywh_to_xyxy(true_box)), stride)  # (HW,)
    score = score_map(out.cls, out.ctr).flatten().cpu()  # (HW,)
    raw = xyxy_to_xywh(look.window.to_frame(look.selection.box_crop))  # the chosen cell's box, before smoothing
    row = {"peak_score": float(score.max()), "peak_on_target": float(truth[int(score.argmax())]),
           "aspect_error": aspect_error(raw[2], raw[3], true_box),
           "turned_aspect_error": turned_aspect_error(tracker, look, true_box),
           "center_error": float(normalized_center_error(raw[None], true_box[None])[0])}
    for name, xi in (("memory_map", out.memory_spatial_map), ("query_map", out.query_spatial_map)):
        if xi is not None:
            row[f"{name}_saturated"] = float((xi > SATURATED).float().mean())
    if out.temporal_weights is not None:
        frames = frame_weights(out.temporal_weights[0])  # (N,)
        first = 0 if model.cfg.tde_includes_initial else 1  # eq. 2's bounds: m_0 is the key, not weighted
        row["first_weight"], row["largest_weight"] = float(frames[first]), float(frames.max())
        if len(entries) - first >= 2:  # a drifted frame's weight needs clean ones to compare with
            row["drifted_weight"] = weight_of_a_drifted_frame(tracker, seq, frame, entries, first)
    if out.attn_q2m is not None and truth.any():
        attn = out.attn_q2m[0].cpu()  # (HW, N'HW)
        memory_target = memory_target_cells(entries, attn.shape[1], centers, stride)  # (N'HW,)
        (row["attention_entropy"], row["attention_target_mass"],
         row["attention_target_uniform"]) = attention_on_target(attn, truth, memory_target)
    return row


CHECKS = {  # every check of the report, and the part of the model it needs (None: every model has it)
    "median peak score": None, "peak on the target": None,
    "box aspect error, median": None, "box aspect error turned 90 degrees, median": None,
    "box centre error, median": None,
    f"memory_map cells above {SATURATED}": "SDE on memory (ste)",
    f"query_map cells above {SATURATED}": "SDE on the query (sde_q)",
    "first weighted frame's weight, std": "TDE (ste)", "largest temporal weight, mean": "TDE (ste)",
    "drifted reference's weight / clean": "TDE (ste)",
    "attention entropy / max": "cross-attention", "attention mass on the target": "cross-attention",
}


def report(model: STIF, sequences: list[Sequence], per_sequence: int = 8, bounds: Bounds = Bounds()) -> dict:
    """Medians over the samples of every sequence, and each bound with its verdict (``ok`` None, with ``why``,
    when the model lacks the part or there are too few samples)."""
    t = model.cfg.memory_size
    rows = [measure(model, seq, i) for seq in sequences for i in sample_frames(seq, per_sequence, t)]
    if not rows:
        raise ValueError(f"none of the {len(sequences)} sequence(s) has a frame with {t} earlier frames and the "
                         f"target visible in all {t + 2}: nothing to measure")
    col = {k: np.array([r[k] for r in rows if k in r]) for k in rows[0]}
    summary = {"samples": len(rows), "peak_score_median": float(np.median(col["peak_score"])),
               "peak_on_target": float(col["peak_on_target"].mean())}
    checks = {"median peak score": (summary["peak_score_median"], f">= {bounds.peak_score}",
                                    summary["peak_score_median"] >= bounds.peak_score),
              "peak on the target": (summary["peak_on_target"], f">= {bounds.peak_on_target}",
                                     summary["peak_on_target"] >= bounds.peak_on_target)}
    for key, name in (("aspect_error", "box aspect error, median"),
                      ("turned_aspect_error", "box aspect error turned 90 degrees, median"),
                      ("center_error", "box centre error, median")):
        summary[f"{key}_median"] = v = float(np.median(col[key]))
        checks[name] = (v, f"<= {getattr(bounds, key)}", v <= getattr(bounds, key))
    for name in ("memory_map", "query_map"):
        if f"{name}_saturated" in col:
            summary[f"{name}_saturated"] = v = float(col[f"{name}_saturated"].mean())
            checks[f"{name} cells above {SATURATED}"] = (v, f"< {bounds.saturated_share}", v < bounds.saturated_share)
    if "first_weight" in col:
        std, largest = float(col["first_weight"].std()), float(col["largest_weight"].mean())
        summary |= {"first_weight_mean": float(col["first_weight"].mean()), "first_weight_std": std,
                    "largest_weight_mean": largest}
        checks["first weighted frame's weight, std"] = (std, f">= {bounds.weight_spread}",
                                                             std >= bounds.weight_spread)
        checks["largest temporal weight, mean"] = (largest, f"< {bounds.largest_weight}",
                                                   largest < bounds.largest_weight)
    if "drifted_weight" in col:
        summary["drifted_weight_median"] = v = float(np.median(col["drifted_weight"]))
        checks["drifted reference's weight / clean"] = (v, f"< {bounds.drifted_weight}", v < bounds.drifted_weight)
    if "attention_entropy" in col:
        lo, hi = bounds.entropy_range
        ent = float(col["attention_entropy"].mean())
        mass, uniform = float(col["attention_target_mass"].mean()), float(col["attention_target_uniform"].mean())
        summary |= {"attention_entropy": ent, "attention_target_mass": mass, "attention_target_uniform": uniform}
        checks["attention entropy / max"] = (ent, f"in [{lo}, {hi}]", lo <= ent <= hi)
        checks["attention mass on the target"] = (mass, f"> uniform {uniform:.3f}", mass > uniform)
    few = len(rows) < bounds.min_samples
    summary["checks"] = {
        name: {"value": checks[name][0], "bound": checks[name][1], "ok": None if few else bool(checks[name][2]),
               "why": f"too few samples ({len(rows)} < {bounds.min_samples})" if few else None}
        if name in checks else
        {"value": None, "bound": None, "ok": None, "why": f"not applicable: the {model.cfg.variant} model has no "
                                                             f"{part}"}
        for name, part in CHECKS.items()}
    summary["too_few_samples"] = few
    return summary


def format_report(summary: dict) -> str:
    lines = [f"{summary['samples']} samples", f"{'measure':<44} {'value':>8}  {'healthy when':<20} verdict"]
    for name, c in summary["checks"].items():
        value = "-" if c["value"] is None else f"{c['value']:.3f}"
        verdict = c["why"] if c["ok"] is None else "ok" if c["ok"] else "UNHEALTHY"
        lines.append(f"{name:<44} {value:>8}  {c['bound'] or '':<20} {verdict}")
    if summary["too_few_samples"]:
        lines.append(f"no verdict from {summary['samples']} samples: the bounds need more (--samples, or a split "
                     "with more sequences)")
    return "\n".join(lines)
