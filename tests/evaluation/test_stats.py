"""Bootstrap intervals over sequences and paired comparisons, checked against what theory says they must be."""
import math

import numpy as np
import pytest

from stif_core.evaluation.compare import comparison, format_comparison, seed_groups
from stif_core.evaluation.stats import interval, paired, per_sequence, seed_spread


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


def test_seeds_add_their_spread_to_the_interval():
    """Three seeds whose means differ by a constant: the seed bootstrap matches the normal theory of a mean of
    (a sequence mean) + (a seed offset); identical seeds give the one-seed interval exactly."""
    rng = np.random.default_rng(1)
    videos = rng.normal(0.5, 0.15, 9)  # (S,)
    same = interval(np.stack([videos] * 3))
    one = interval(videos)
    assert (same.low, same.mean, same.high) == pytest.approx((one.low, one.mean, one.high))
    offsets = np.array([-0.1, 0.0, 0.1])  # training luck, larger than the sequences' share
    seeded = interval(videos[None] + offsets[:, None])
    assert seeded.mean == pytest.approx(one.mean)
    assert seeded.high - seeded.low > one.high - one.low + 0.05  # the seeds' spread widens it
    assert seed_spread(videos[None] + offsets[:, None]) == pytest.approx(0.1)
    assert np.isnan(seed_spread(videos))


def test_a_paired_difference_over_seeds_needs_the_gain_to_beat_the_seeds():
    base = np.array([0.1, 0.9, 0.3, 0.7, 0.5, 0.2, 0.8, 0.4, 0.6])
    steady = paired(np.stack([base + 0.05] * 3), np.stack([base] * 3))
    assert steady.resolved and steady.difference.low == pytest.approx(0.05)
    lucky = paired(np.stack([base + 0.05 + d for d in (-0.15, 0.0, 0.15)]), np.stack([base] * 3))
    assert lucky.difference.mean == pytest.approx(0.05) and not lucky.resolved


def test_compare_takes_checkpoints_that_differ_only_in_seed_as_one_row():
    scores = {"a": -0.05, "b": 0.05}  # per-sequence offsets

    def row(auc: float, variant: str, seed: int | None, sha: str) -> dict:
        setup = {"tracker": "stif", "variant": variant, "checkpoint_sha256": sha} | (
            {"seed": seed, "recipe": "r1"} if seed is not None else {})
        return {"per_sequence": {s: {"auc": auc + v, "ao": auc, "data": s} for s, v in scores.items()},
                "setup": setup}

    rows = {"stif-full-0000aaaa-onnx": row(0.5, "full", 0, "0000aaaa"),
            "stif-full-1111bbbb-onnx": row(0.6, "full", 1, "1111bbbb"),
            "stif-full-2222cccc-onnx": row(0.7, "full", 2, "2222cccc"),
            "stif-baseline-onnx": row(0.4, "baseline", None, "3333dddd"), "csrt": {"per_sequence": rows_csrt()}}
    assert seed_groups(rows) == {"stif-full-onnx": list(rows)[:3], "stif-baseline-onnx": ["stif-baseline-onnx"],
                                 "csrt": ["csrt"]}
    table = comparison(rows, "stif-baseline-onnx", ("auc",), seeds=True)
    full = table.loc["stif-full-onnx"]
    assert full["seeds"] == 3 and full["auc"] == pytest.approx(0.6)
    assert full["auc_seed_sd"] == pytest.approx(0.1) and full["d_auc"] == pytest.approx(0.2)
    assert "seed sd" in format_comparison(table, "stif-baseline-onnx", ("auc",))
    assert len(comparison(rows, "stif-baseline-onnx", ("auc",))) == 5  # without --seeds: every row alone


def rows_csrt() -> dict:
    return {"a": {"auc": 0.6, "ao": 0.6, "data": "a"}, "b": {"auc": 0.7, "ao": 0.7, "data": "b"}}


def test_a_knockout_paired_seed_by_seed_is_not_drowned_by_the_seeds_luck():
    """A knock-out that costs 0.02 on every sequence of every seed, on seeds that differ by 0.1: paired seed by
    seed the training's luck cancels and the cost is resolved; resampled as independent seeds it is not."""
    rng = np.random.default_rng(3)
    full = rng.uniform(0.3, 0.7, 9)[None] + np.array([[0.0], [0.1], [-0.1]])  # (3 seeds, 9 sequences)
    knocked = full - 0.02
    same = paired(knocked, full, same_seeds=True)
    assert same.difference.mean == pytest.approx(-0.02) and same.resolved
    assert same.difference.high - same.difference.low < 1e-9  # the same cost everywhere: no spread at all
    assert not paired(knocked, full).resolved
    with pytest.raises(ValueError, match="same_seeds pairs seed k with seed k: 3 and 2 seeds"):
        paired(knocked, full[:2], same_seeds=True)


def test_seeds_group_only_one_recipe_and_count_each_seed_once():
    """Two eval runs into one --out (seed 0, then seeds 0 and 1) name one checkpoint ``stif-full`` and
    ``stif-full-<sha8>``: it is kept apart with a warning, not counted twice; a row of another recipe with the
    same name is its own group, not merged in."""
    def row(seed: int, sha: str, recipe: str = "r1", auc: float = 0.5) -> dict:
        setup = {"tracker": "stif", "variant": "full", "checkpoint_sha256": sha, "seed": seed, "recipe": recipe}
        return {"per_sequence": {s: {"auc": auc, "ao": auc, "data": s} for s in "ab"}, "setup": setup}

    rows = {"stif-full": row(0, "aaaa"), "stif-full-fd482416": row(0, "aaaa"), "stif-full-11112222": row(1, "bbbb"),
            "stif-full-33334444": row(0, "cccc", recipe="r2")}
    with pytest.warns(UserWarning, match="'stif-full' and 'stif-full-fd482416' are both seed 0 of one set-up"):
        groups = seed_groups(rows)
    assert groups == {"stif-full": ["stif-full", "stif-full-11112222"], "stif-full-fd482416": ["stif-full-fd482416"],
                      "stif-full-33334444": ["stif-full-33334444"]}
    assert seed_groups({"stif-full-0000aaaa": row(0, "aaaa", "r1"), "stif-full-1111bbbb": row(1, "bbbb", "r2")}) == {
        "stif-full-0000aaaa": ["stif-full-0000aaaa"], "stif-full-1111bbbb": ["stif-full-1111bbbb"]}


def test_variance_components_recover_planted_ones_and_the_evidence_needed_resolves():
    from stif_core.evaluation.stats import components

    rng = np.random.default_rng(0)
    d = 0.1 + rng.normal(0, 0.03, (200, 1)) + rng.normal(0, 0.05, (1, 300)) + rng.normal(0, 0.02, (200, 300))
    c = components(d)
    np.testing.assert_allclose([c.seed ** 0.5, c.sequence ** 0.5, c.residual ** 0.5], [0.03, 0.05, 0.02], rtol=0.15)
    n = c.sequences_needed(0.02, seeds=40)
    assert c.resolvable(40, n) <= 0.02 < c.resolvable(40, n - 1)  # the fewest sequences that do
    assert c.sequences_needed(0.02, seeds=10) == math.inf  # 10 seeds' luck alone is wider
    assert c.sequences_needed(0.001, seeds=1) == math.inf  # one seed's luck alone is wider than 0.001
    # simulated: with that many sequences a true difference of 0.02 is resolved about 80% of the time
    hits = [abs(x.mean()) > 1.96 * c.variance(40, n) ** 0.5 for x in
            (0.02 + rng.normal(0, 0.03, (40, 1)) + rng.normal(0, 0.05, (1, n)) + rng.normal(0, 0.02, (40, n))
             for _ in range(400))]
    assert 0.7 < np.mean(hits) < 0.9
    with pytest.raises(ValueError, match="at least 2 seeds and 2 sequences"):
        components(np.ones((1, 5)))


def test_the_power_table_pairs_seed_by_seed_and_refuses_uneven_rows():
    from stif_core.lab.table1 import power_table, row_groups, stored_rows

    rows = stored_rows()
    table = power_table(rows)
    assert table.attrs["evidence"] == (3, 9) and "pooled" in table.index
    assert (table["resolvable 3x9"] > table["resolvable 3x180"]).all()  # more sequences resolve less
    one_seed = {n: r for n, r in rows.items() if n != row_groups(rows)["ste"][0]}
    with pytest.raises(ValueError, match="the same number of seeds"):
        power_table(one_seed)
