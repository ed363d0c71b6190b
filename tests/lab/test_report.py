"""The ablation summary from the ablation notebook's metrics: intervals, paired differences, knock-outs."""
import numpy as np
import pandas as pd
import pytest

from stif_core.config import VARIANTS
from stif_core.lab.report import knockout_table, write_summary
from stif_core.model.knockouts import KNOCKOUTS

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


def test_summary_names_the_rows_it_lacks(tmp_path):
    rows = {"baseline": row(np.linspace(0.2, 0.7, 9)), "full": row(np.linspace(0.25, 0.75, 9))}
    text = write_summary(tmp_path, rows, {"x": 1.0}).read_text()
    assert "Rows without a shipped model, not in this table: ste, sde_q, stif, ste+sde_q" in text


def test_shipped_variants_are_the_rows_with_weights():
    from stif_core.lab.report import shipped_variants

    assert shipped_variants() == list(VARIANTS)  # every Table 1 row ships, in the table's order


@pytest.mark.slow
def test_notebooks_run_in_parallel_and_a_failure_is_raised(tmp_path):
    import nbformat
    import pytest
    from papermill.exceptions import PapermillExecutionError

    from stif_core.lab.report import run_all

    def notebook(name, code):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                                             nbformat.v4.new_code_cell(code)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = tmp_path / name
        nbformat.write(nb, path)
        return path

    good, bad = notebook("good.ipynb", "print(x + 1)"), notebook("bad.ipynb", "raise ValueError('broken cell')")
    tasks = [(f"run {k}", good, tmp_path / "out" / f"{k}.ipynb", {"x": k}) for k in range(3)]
    timings = run_all(tasks, jobs=2)
    assert list(timings) == ["run 0", "run 1", "run 2"]
    printed = nbformat.read(tmp_path / "out" / "2.ipynb", as_version=4).cells[-1].outputs[0]["text"]
    assert printed == "3\n"  # x = 2 injected, x + 1 printed
    with pytest.raises(PapermillExecutionError, match="broken cell"):
        run_all([("bad", bad, tmp_path / "out" / "bad.ipynb", {})], jobs=2)
