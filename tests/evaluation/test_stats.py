"""Bootstrap intervals over sequences and paired comparisons, checked against what theory says they must be."""
import numpy as np
import pytest

from stif_core.evaluation.stats import interval, paired, per_sequence


def test_interval_matches_the_normal_theory_on_a_large_sample():
    values = np.random.default_rng(0).normal(0.5, 0.2, 400)
    ci = interval(values)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))  # the normal approximation's half-width
    assert ci.mean == pytest.approx(values.mean())
    assert ci.high - ci.low == pytest.approx(2 * half, rel=0.08)
    assert ci.low < ci.mean < ci.high


def test_interval_is_empty_for_identical_scores_and_wider_at_a_higher_level():
    ci = interval(np.full(9, 0.42))
    assert (ci.low, ci.mean, ci.high) == pytest.approx((0.42, 0.42, 0.42))
    spread = np.array([0.2, 0.3, 0.35, 0.5, 0.6, 0.62, 0.7, 0.4, 0.45])
    narrow, wide = interval(spread, level=0.8), interval(spread, level=0.99)
    assert wide.low < narrow.low and wide.high > narrow.high


def test_paired_comparison_keeps_pairs_together():
    """A constant gain on every sequence is resolved however large the spread between sequences, which an
    unpaired comparison of the two means would not resolve."""
    base = np.array([0.1, 0.9, 0.3, 0.7, 0.5, 0.2, 0.8, 0.4, 0.6])
    result = paired(base + 0.01, base)
    assert result.difference.low == pytest.approx(0.01) and result.difference.high == pytest.approx(0.01)
    assert result.resolved and (result.ahead, result.behind, result.level) == (9, 0, 0)
    a, b = interval(base + 0.01), interval(base)
    assert a.low < b.high  # unpaired, the intervals overlap
    mixed = paired(base + np.array([0.05, -0.05] * 4 + [0.0]), base)
    assert not mixed.resolved and (mixed.ahead, mixed.behind, mixed.level) == (4, 4, 1)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="finite"):
        interval(np.array([0.3, np.nan]))
    with pytest.raises(ValueError, match="same sequences"):
        paired(np.ones(3), np.ones(4))
    report = {"per_sequence": {"deer": {"auc": 0.5}}}
    assert per_sequence(report, "auc", ["deer"]).tolist() == [0.5]
    with pytest.raises(ValueError, match="crossing"):
        per_sequence(report, "auc", ["deer", "crossing"])


def test_comparison_of_an_eval_run(tmp_path):
    import json

    from stif_core.evaluation.compare import comparison, format_comparison
    from stif_core.evaluation.results import read_metrics

    auc = {"a": [0.5, 0.6, 0.7], "b": [0.4, 0.5, 0.65]}
    rows = {t: {"overall": {}, "per_sequence": {s: {"auc": v, "ao": v} for s, v in zip("xyz", values)}}
            for t, values in auc.items()}
    rows["a"]["per_sequence"]["extra"] = {"auc": 1.0, "ao": 1.0}  # only one row has it: left out
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(rows))
    table = comparison(read_metrics(path), reference="b", keys=("auc",))
    assert table.loc["a", "auc"] == pytest.approx(0.6) and table.loc["a", "sequences"] == 3
    assert table.loc["a", "d_auc"] == pytest.approx(np.mean([0.1, 0.1, 0.05]))
    assert table.loc["a", "auc_ahead"] == 3 and bool(table.loc["a", "auc_resolved"])
    text = format_comparison(table, "b", ("auc",))
    assert "(reference)" in text and "+0.083" in text and "3/0*" in text
    with pytest.raises(ValueError, match="reference 'c' is not a row"):
        comparison(rows, reference="c")
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not an eval metrics file"):
        read_metrics(path)
