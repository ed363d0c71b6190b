"""The box's shape on the frames where a tracker holds its target (IoU above ``HELD_IOU``): how far its aspect
ratio and centre are from the ground truth's. AUC mixes where a box is with what shape it has; this separates
them (docs/design.md, section 10: boxes pulled towards a square).

``python -m stif_core compare --metrics runs/eval/metrics.json --shape``
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.sequences import Sequence
from .harness import hidden_frames, recorded, result_digest
from .metrics import normalized_center_error, rect_iou, visible_frames
from .results import read_otb
from .tre import records_segments, segments, segments_digest

HELD_IOU = 0.3  # a frame whose box overlaps the target more than this: the tracker holds it


def log_aspect_error(pred_wh: np.ndarray, true_wh: np.ndarray) -> np.ndarray:
    """(..., 2) w, h each -> (...) log((w / h) / (true w / true h)): 0 for the target's shape, log 2 twice as wide."""
    return np.log(pred_wh[..., 0] / pred_wh[..., 1]) - np.log(true_wh[..., 0] / true_wh[..., 1])


def visible(seq: Sequence, n: int) -> np.ndarray:
    """(n,) bool: frames 1 .. n-1 whose target is annotated and not hidden (frame 0 is the given box)."""
    hidden = hidden_frames(seq)
    ok = visible_frames(seq.boxes[:n], None if hidden is None else hidden[:n])
    ok[0] = False
    return ok


def shape_errors(parts: list[tuple[np.ndarray, Sequence]]) -> dict:
    """A tracker's boxes (N, 4) on each sequence of ``parts`` (one sequence, or a TRE row's segments of one), their
    frames taken together: the share of visible frames held, and on the held frames the signed log aspect error
    (H,), the centre error over the target's size (H,), and the median true and predicted w / h."""
    held, p, g = [], [], []
    for pred, seq in parts:
        pred = np.asarray(pred, dtype=np.float64)
        ok = visible(seq, len(pred))
        hit = rect_iou(pred[ok], seq.boxes[:len(pred)][ok]) > HELD_IOU
        held.append(hit)
        p.append(pred[ok][hit])
        g.append(seq.boxes[:len(pred)][ok][hit])
    held, p, g = np.concatenate(held), np.concatenate(p), np.concatenate(g)
    return {"held": float(held.mean()) if len(held) else float("nan"),
            "aspect": log_aspect_error(p[:, 2:], g[:, 2:]),
            "centre": normalized_center_error(p, g),
            "true_aspect": float(np.median(g[:, 2] / g[:, 3])) if len(g) else float("nan"),
            "aspect_median": float(np.median(p[:, 2] / p[:, 3])) if len(p) else float("nan")}


def tracked(row: dict, seq: Sequence, data: str) -> tuple[list[Sequence], str]:
    """What a row tracked of ``seq`` (the sequence, or a TRE row's segments of it) and the ``data`` the row records
    when it was computed on them (``data``: the sequence's fingerprint)."""
    if row.get("starts", 1) == 1:
        return [seq], data
    parts = segments([seq], row["starts"], hidden_frames)
    if records_segments(row, seq.name):
        return parts, segments_digest({part.name: part.fingerprint() for part in parts})
    return parts, data if len(parts[0]) == len(seq) else parts[0].fingerprint()  # its first segment's


def edited(folder: Path, name: str) -> bool:
    """Whether a result's files changed since the run wrote them (the digest it recorded beside them)."""
    stored = recorded(folder, name)
    return bool(stored) and stored[1:2] != [result_digest(folder, name)]


def shape_table(out_dir: str | Path, rows: dict, sequences: list[Sequence]) -> dict[str, dict]:
    """Per row of an eval run (its result files in ``out_dir``): the held share, the median |log aspect error| and
    centre error over every held frame, and per sequence true -> predicted median w / h; sequences whose stored
    data differ from ``sequences``', or whose result files changed since they were scored, are left out of that row,
    named in ``skipped``."""
    missing = [name for name in rows if not (Path(out_dir) / name / "otb").is_dir()]
    if missing:
        raise ValueError(f"the boxes' shape is read from each row's result files, and {out_dir} holds none for "
                         f"{', '.join(missing[:3])} (no {Path(out_dir) / missing[0] / 'otb'}); a crossval.json pools "
                         "folds whose files stay in each fold's folder: give that fold's metrics.json")
    table, prints = {}, {seq.name: seq.fingerprint() for seq in sequences}  # once, for every row
    for name, row in rows.items():
        held, aspect, centre, per, skipped = [], [], [], {}, []
        for seq in sequences:
            if seq.name not in row["per_sequence"]:
                skipped.append(seq.name)
                continue
            parts, data = tracked(row, seq, prints[seq.name])
            stored = row["per_sequence"][seq.name].get("data")
            if (stored is not None and stored != data) or any(edited(Path(out_dir) / name, p.name) for p in parts):
                skipped.append(seq.name)
                continue
            e = shape_errors([(read_otb(Path(out_dir) / name / "otb", part.name)[0], part) for part in parts])
            held.append(e["held"])
            aspect.append(np.abs(e["aspect"]))
            centre.append(e["centre"])
            per[seq.name] = (e["true_aspect"], e["aspect_median"])
        frames = np.concatenate(aspect) if aspect else np.zeros(0)
        table[name] = {"held": float(np.nanmean(held)) if held else float("nan"),
                       "aspect_error": float(np.median(frames)) if len(frames) else float("nan"),
                       "centre_error": float(np.median(np.concatenate(centre))) if len(frames) else float("nan"),
                       "per_sequence": per, "skipped": skipped, "starts": row.get("starts", 1)}
    return table


def format_shape(table: dict[str, dict]) -> str:
    lines = [f"box shape on the frames each tracker holds (IoU > {HELD_IOU}); per sequence: true w/h -> median "
             "predicted w/h", f"{'tracker':<28} {'held':>6} {'|log aspect err|':>17} {'centre err':>11}"]
    for name, r in table.items():
        per = "; ".join(f"{s} {t:.2f}->{p:.2f}" if np.isfinite(p) else f"{s}: no frame held"
                        for s, (t, p) in r["per_sequence"].items())
        lines.append(f"{name:<28} {r['held']:>6.2f} {r['aspect_error']:>17.3f} {r['centre_error']:>11.3f}   {per}"
                     + (f" (left out, other data or results edited: {', '.join(r['skipped'])})"
                        if r["skipped"] else ""))
    if any(r["starts"] > 1 for r in table.values()):
        lines.append("a TRE row (<tracker>-tre<K>): the frames of every start of a sequence taken together")
    return "\n".join(lines)
