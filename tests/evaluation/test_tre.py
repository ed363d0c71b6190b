"""OTB's temporal robustness evaluation: the toolkit's starts, segments cut alike, and curves pooled over the
frames of a sequence's segments."""
import json

import numpy as np
import pytest

from stif_core.data.synthetic import synthetic_clip
from stif_core.evaluation.harness import evaluate, hidden_frames
from stif_core.evaluation.metrics import IOU_THRESHOLDS, evaluate_sequence, rect_iou, visible_frames
from stif_core.evaluation.tre import pool_segments, segment, segment_starts, segments
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
    assert one["kcf"]["per_sequence"]["clip1"]["data"] != row["per_sequence"]["clip1"]["data"]  # never paired


def test_segments_of_several_sequences_keep_their_order():
    clips = [synthetic_clip(45, seed=s, name=f"c{s}") for s in (1, 2)]
    names = [s.name for s in segments(clips, 2, hidden_frames)]
    assert names[0] == "c1@0" and names[-1].startswith("c2@") and len(names) == 4
    with pytest.raises(ValueError, match="starts=0"):
        evaluate({}, clips, ".", starts=0)
