"""The ablation summary from the ablation notebook's metrics: intervals, paired differences, knock-outs."""
import numpy as np
import pandas as pd

from stif_core.config import VARIANTS
from stif_core.model.knockouts import KNOCKOUTS
from stif_core.report import knockout_table, write_summary

SEQUENCES = [f"seq{i}" for i in range(9)]


def row(scores, knockout=None):
    per = {s: {"auc": a, "ao": a, "sr50": a, "sr75": a / 2, "prec20": a} for s, a in zip(SEQUENCES, scores)}
    return {"knockout": knockout, "fast": False, "eval_frames": None, "sequences": SEQUENCES, "per_sequence": per,
            "overall": {"auc": float(np.mean(scores))}}


def test_summary_resolves_a_consistent_gain_and_not_noise(tmp_path):
    base = np.linspace(0.2, 0.7, 9)
    noise = np.array([0.05, -0.05] * 4 + [0.0])
    rows = {v: row(base + noise) for v in VARIANTS}
    rows["baseline"], rows["full"] = row(base), row(base + 0.04)  # full: +0.04 on every sequence
    rows |= {f"full-ko-{k}": row(base + 0.04 - (0.1 if k == "mask_empty" else 0.0), k) for k in KNOCKOUTS}
    text = write_summary(tmp_path, rows, {"x": 1.0}).read_text()
    assert "resolved against baseline: full (+0.040); the median width" in text  # the noisy rows are not listed
    assert "resolved against full: full-ko-mask_empty (-0.100)" in text
    assert "paper" in text.lower() and (tmp_path / "ablation.png").is_file()
    table = knockout_table(rows)
    assert table.loc["full-ko-no_q2m", "trained without it"] == "ste+sde_q"
    assert pd.isna(table.loc["full-ko-mask_empty", "trained without it"])
