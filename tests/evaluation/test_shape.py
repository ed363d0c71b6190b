"""The box-shape figures of ``compare --shape``: held frames, aspect and centre errors, checked by hand."""
import json

import numpy as np
import pytest

from stif_core.data.synthetic import synthetic_clip
from stif_core.evaluation.harness import evaluate, hidden_frames
from stif_core.evaluation.metrics import rect_iou
from stif_core.evaluation.results import read_metrics, read_otb, write_otb
from stif_core.evaluation.shape import HELD_IOU, format_shape, log_aspect_error, shape_errors, shape_table
from stif_core.evaluation.tre import segments
from stif_core.tracking.baselines import make_baseline


def test_a_box_twice_as_wide_errs_by_log_2_and_a_lost_one_is_not_held():
    clip = synthetic_clip(20, size=(120, 160), seed=3)
    pred = clip.boxes.copy()
    pred[:, 0] -= pred[:, 2] / 2
    pred[:, 2] *= 2  # same centre, twice as wide: IoU 0.5, held
    pred[15:] = [0, 0, 2, 2]  # lost: not held
    e = shape_errors([(pred, clip)])
    shown = ~clip.absent[1:]
    assert e["held"] == pytest.approx((shown[:14].sum()) / shown.sum())
    np.testing.assert_allclose(e["aspect"], np.log(2))
    np.testing.assert_allclose(e["centre"], 0, atol=1e-9)
    assert e["aspect_median"] == pytest.approx(2 * e["true_aspect"])


def test_the_table_reads_each_rows_results_and_leaves_out_other_data(tmp_path):
    clip = synthetic_clip(20, size=(120, 160), seed=3)
    other = synthetic_clip(20, size=(120, 160), seed=4, name="other")
    for row, boxes in (("exact", clip.boxes), ("tall", clip.boxes * [1, 1, 1, 1.5])):
        write_otb(tmp_path / row / "otb", clip.name, boxes, np.zeros(len(boxes)))
    rows = {"exact": {"per_sequence": {clip.name: {"data": clip.fingerprint()}}},
            "tall": {"per_sequence": {clip.name: {"data": other.fingerprint()}}}}
    table = shape_table(tmp_path, rows, [clip])
    assert table["exact"]["aspect_error"] == pytest.approx(0) and table["exact"]["held"] == pytest.approx(1)
    assert table["tall"]["skipped"] == [clip.name] and np.isnan(table["tall"]["aspect_error"])
    rows["tall"]["per_sequence"][clip.name]["data"] = clip.fingerprint()
    table = shape_table(tmp_path, rows, [clip])
    assert table["tall"]["aspect_error"] == pytest.approx(np.log(1.5))
    assert "exact" in format_shape(table) and json.dumps(table)
    rows["pooled"] = {"per_sequence": {clip.name: {"data": clip.fingerprint()}}}  # a crossval.json's row: no files
    with pytest.raises(ValueError, match="holds none for pooled"):
        shape_table(tmp_path, rows, [clip])


def test_a_tre_rows_shape_pools_the_frames_of_its_segments(tmp_path):
    clips = [synthetic_clip(40, size=(96, 128), seed=s, name=f"c{s}") for s in (1, 2)]
    evaluate({"kcf": lambda: make_baseline("kcf")}, clips, tmp_path, progress=False, starts=3)
    table = shape_table(tmp_path, read_metrics(tmp_path / "metrics.json"), clips)["kcf-tre3"]
    assert table["skipped"] == [] and set(table["per_sequence"]) == {"c1", "c2"}
    held, aspects = [], []
    for clip in clips:  # by hand: every segment's visible frames after its first, taken together
        parts = segments([clip], 3, hidden_frames)
        assert len(parts) == 3
        ious, true_wh, pred_wh = [], [], []
        for part in parts:
            pred = read_otb(tmp_path / "kcf-tre3" / "otb", part.name)[0]
            shown = ~part.absent
            shown[0] = False
            iou = rect_iou(pred[shown], part.boxes[shown])
            ious.append(iou)
            true_wh.append(part.boxes[shown][iou > HELD_IOU, 2:])
            pred_wh.append(pred[shown][iou > HELD_IOU, 2:])
        held.append(np.mean(np.concatenate(ious) > HELD_IOU))
        aspects.append(np.abs(log_aspect_error(np.concatenate(pred_wh), np.concatenate(true_wh))))
    assert table["held"] == pytest.approx(np.mean(held))
    assert table["aspect_error"] == pytest.approx(np.median(np.concatenate(aspects)))
    assert "a TRE row (<tracker>-tre<K>): the frames of every start" in format_shape({"kcf-tre3": table})
    path = tmp_path / "kcf-tre3" / "otb" / f"{segments([clips[0]], 3, hidden_frames)[1].name}.txt"
    path.write_text(path.read_text().replace(path.read_text().splitlines()[1], "1,1,300,5"))  # one box edited
    table = shape_table(tmp_path, read_metrics(tmp_path / "metrics.json"), clips)["kcf-tre3"]
    assert table["skipped"] == ["c1"] and set(table["per_sequence"]) == {"c2"}  # scored on other boxes: left out


def test_a_sequence_where_no_frame_is_held_says_so():
    row = {"held": 0.0, "aspect_error": float("nan"), "centre_error": float("nan"), "starts": 1, "skipped": [],
           "per_sequence": {"deer": (1.5, float("nan")), "dudek": (0.8, 0.9)}}
    text = format_shape({"kcf": row})
    assert "deer: no frame held" in text and "dudek 0.80->0.90" in text and "nan->nan" not in text
