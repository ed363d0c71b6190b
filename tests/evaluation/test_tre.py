"""OTB's temporal robustness evaluation: the toolkit's starts, segments cut alike, and curves pooled over the
frames of a sequence's segments."""
import copy
import hashlib
import json
import tracemalloc
from argparse import Namespace

import numpy as np
import pytest

from stif_core.commands.compare import run as compare_command
from stif_core.data.synthetic import synthetic_clip
from stif_core.evaluation.compare import comparison, comparisons, format_comparison
from stif_core.evaluation.harness import evaluate, hidden_frames
from stif_core.evaluation.metrics import IOU_THRESHOLDS, evaluate_sequence, rect_iou, visible_frames
from stif_core.evaluation.results import read_metrics
from stif_core.evaluation.shape import shape_table
from stif_core.evaluation.tre import pool_segments, segment, segment_starts, segments, starts_text
from stif_core.tracking.baselines import make_baseline


def test_starts_follow_otbs_split_of_the_frames_that_leave_twenty():
    visible = np.ones(120, bool)  # frames 0-100 leave >= 20 frames: 101 candidates
    # OTB: floor(arange(1, 101, 101 / 4)) = 1, 26, 51, 76, then 101 -> frames 0, 25, 50, 75, 100
    assert segment_starts(visible, 5) == [0, 25, 50, 75, 100]
    visible[25] = False  # a start never falls on a frame without a box: the candidates shift past it
    assert segment_starts(visible, 5) == [0, 26, 51, 76, 100]
    assert segment_starts(visible, 1) == [0]
    assert segment_starts(np.ones(15, bool), 5) == [0]  # too short for a second segment
    assert segment_starts(np.ones(22, bool), 5) == [0, 1, 2]  # fewer candidates than starts


def test_a_segment_cuts_every_per_frame_field_alike():
    clip = synthetic_clip(30, seed=1)
    part = segment(clip, 12)
    assert part.name == "synthetic@12" and len(part) == 18
    np.testing.assert_array_equal(part.boxes, clip.boxes[12:])
    np.testing.assert_array_equal(part.absent, clip.absent[12:])
    np.testing.assert_array_equal(part.frame(0), clip.frame(12))


def test_pooled_curves_are_those_of_the_segments_frames_taken_together():
    rng = np.random.default_rng(0)
    gt = np.tile([50.0, 40, 30, 20], (60, 1)) + rng.normal(0, 2, (60, 4)).clip(-5, 5)
    pred = gt + rng.normal(0, 6, (60, 4))
    parts = {"a@0": (pred, gt), "a@40": (pred[40:], gt[40:])}
    pooled = pool_segments({n: evaluate_sequence(p, g, (320, 240)) for n, (p, g) in parts.items()})["a"]
    ious = []
    for p, g in parts.values():
        p = p.copy()
        p[0] = g[0]  # each segment starts from its ground-truth box
        ious.append(rect_iou(p, g))
    ious = np.concatenate(ious)  # (80,): OTB's errCoverage of the sequence
    np.testing.assert_allclose(pooled["curves"]["success"], (ious[:, None] > IOU_THRESHOLDS[None]).mean(0))
    assert pooled["frames"] == 80 and len(pooled["ious"]) == 59 + 19


def test_the_harness_tracks_each_start_and_scores_per_sequence(tmp_path):
    clips = [synthetic_clip(45, seed=s, name=f"clip{s}") for s in (1, 2)]
    report = evaluate({"kcf": lambda: make_baseline("kcf")}, clips, tmp_path, progress=False, starts=3)
    row = report["kcf-tre3"]
    assert set(row["per_sequence"]) == {"clip1", "clip2"} and row["starts"] == 3
    starts = {c.name: segment_starts(visible_frames(c.boxes, hidden_frames(c)), 3) for c in clips}
    stored = sorted(p.name for p in (tmp_path / "kcf-tre3" / "otb").glob("*.txt"))
    assert stored == sorted(f"{n}@{s}.txt" for n, ss in starts.items() for s in ss)
    assert json.loads((tmp_path / "kcf-tre3" / "run.json").read_text())["starts"] == 3
    assert row["overall"]["auc"] == pytest.approx(np.mean([r["auc"] for r in row["per_sequence"].values()]))
    never = {"kcf": lambda: pytest.fail("tracked again although every segment is stored")}
    again = evaluate(never, clips, tmp_path, progress=False, starts=3)
    assert again["kcf-tre3"]["overall"] == pytest.approx(row["overall"])
    one = evaluate({"kcf": lambda: make_baseline("kcf")}, clips, tmp_path, progress=False)
    assert set(json.loads((tmp_path / "metrics.json").read_text())) == {"kcf", "kcf-tre3"}
    for c in clips:  # both record the sequence's own data; the row's starts say how it was scored
        assert one["kcf"]["per_sequence"][c.name]["data"] == row["per_sequence"][c.name]["data"] == c.fingerprint()


def test_a_row_records_the_starts_used_where_a_sequence_is_too_short(tmp_path, capsys):
    clips = [synthetic_clip(60, seed=1, name="long"), synthetic_clip(24, seed=2, name="short")]
    used = {c.name: len(segment_starts(visible_frames(c.boxes, hidden_frames(c)), 8)) for c in clips}
    assert used["long"] == 8 > used["short"]
    row = evaluate({"kcf": lambda: make_baseline("kcf")}, clips, tmp_path, progress=False, starts=8)["kcf-tre8"]
    assert row["starts"] == 8 and row["starts_used"] == {"fewest": used["short"], "most": 8}
    assert {s: e["starts_used"] for s, e in row["per_sequence"].items()} == used
    assert "1 of 2 sequence(s) tracked from fewer than the 8 starts asked" in capsys.readouterr().out
    assert starts_text(row) == f"{used['short']} to 8 of the 8 asked"
    assert starts_text({"starts": 3}) == "3" and starts_text({}) == "1"  # rows recorded before starts_used


def test_starts_far_beyond_the_candidates_cost_no_more_than_the_candidates():
    tracemalloc.start()
    assert segment_starts(np.ones(120, bool), 10**6) == list(range(101))  # every candidate, once
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200_000, peak
    clip = synthetic_clip(30, seed=1)
    assert len(segments([clip], 10**9, hidden_frames)) == visible_frames(clip.boxes, clip.absent)[:11].sum()


def test_segments_of_several_sequences_keep_their_order():
    clips = [synthetic_clip(45, seed=s, name=f"c{s}") for s in (1, 2)]
    names = [s.name for s in segments(clips, 2, hidden_frames)]
    assert names[0] == "c1@0" and names[-1].startswith("c2@") and len(names) == 4
    with pytest.raises(ValueError, match="starts=0"):
        evaluate({}, clips, ".", starts=0)


def tre_run(tmp_path):
    """Two trackers' TRE rows and one one-pass row on two clips, in one metrics file."""
    clips = [synthetic_clip(40, size=(96, 128), seed=s, name=f"c{s}") for s in (1, 2)]
    evaluate({"a": kcf, "b": kcf}, clips, tmp_path, progress=False, starts=3)
    evaluate({"a": kcf}, clips, tmp_path, progress=False)
    return clips, read_metrics(tmp_path / "metrics.json")


def kcf():
    return make_baseline("kcf")


def test_compare_pairs_tre_rows_by_their_sequences_and_keeps_one_pass_rows_apart(tmp_path, capsys):
    clips, rows = tre_run(tmp_path)
    tre = {n: r for n, r in rows.items() if n.endswith("-tre3")}
    table = comparison(tre, "a-tre3", ("auc",))
    assert int(table.loc["b-tre3", "sequences"]) == 2 and not table.attrs["dropped"]
    with pytest.raises(ValueError, match=r"scored differently.*a-tre3, b-tre3: scored from up to 3 starts a "
                                         r"sequence \(OTB's TRE\); a: scored in one pass from frame 0"):
        comparison(rows, "a", ("auc",))
    tables = comparisons(rows, "a", ("auc",))
    one, three = "in one pass from frame 0", "from up to 3 starts a sequence (OTB's TRE)"
    assert tables[one].attrs["reference"] == "a" and tables[three].attrs["reference"] is None
    assert int(tables[three].loc["a-tre3", "sequences"]) == 2 and not tables[three].attrs["dropped"]
    with pytest.raises(ValueError, match="reference 'c' is not a row"):
        comparisons(rows, "c", ("auc",))
    compare_command(Namespace(metrics=str(tmp_path / "metrics.json"), reference="a", keys=("auc",), seeds=False,
                              shape=False, data_root=None))
    out = capsys.readouterr().out
    assert f"rows scored {three}, not compared with a (scored otherwise):" in out and "different data" not in out


def test_tre_rows_of_an_earlier_eval_are_still_read(tmp_path):
    """Before TRE rows recorded their sequences' own fingerprints and starts used, their ``data`` was a digest of
    their segments' fingerprints."""
    clips, rows = tre_run(tmp_path)
    old = copy.deepcopy(rows["a-tre3"])
    for c in clips:
        entry = old["per_sequence"][c.name]
        del entry["starts_used"]
        parts = ";".join(f"{p.name}:{p.fingerprint()}" for p in segments([c], 3, hidden_frames))
        entry["data"] = hashlib.sha256(parts.encode()).hexdigest()[:16]
    del old["starts_used"]
    assert shape_table(tmp_path, {"a-tre3": old}, clips) == shape_table(tmp_path, {"a-tre3": rows["a-tre3"]}, clips)
    mixed = comparison({"a-tre3": old, "b-tre3": rows["b-tre3"]}, keys=("auc",))
    assert int(mixed["sequences"].iloc[0]) == 2 and mixed.attrs["earlier_tre"] == ["a-tre3"]
    assert "TRE rows of an earlier eval" in format_comparison(mixed, keys=("auc",))
    both_old = comparison({"a-tre3": old, "b-tre3": copy.deepcopy(old)}, keys=("auc",))
    assert int(both_old["sequences"].iloc[0]) == 2 and not both_old.attrs["earlier_tre"]
    other = copy.deepcopy(old)
    other["per_sequence"]["c1"]["data"] = "0" * 16
    assert comparison({"a-tre3": old, "b-tre3": other}, keys=("auc",)).attrs["dropped"] == {
        "c1": "rows computed on different data (frames or ground truth differ)"}
    assert shape_table(tmp_path, {"a-tre3": other}, clips)["a-tre3"]["skipped"] == ["c1"]
