"""The box-shape figures of ``compare --shape``: held frames, aspect and centre errors, checked by hand."""
import json

import numpy as np
import pytest

from stif_core.data.synthetic import synthetic_clip
from stif_core.evaluation.results import write_otb
from stif_core.evaluation.shape import format_shape, shape_errors, shape_table


def test_a_box_twice_as_wide_errs_by_log_2_and_a_lost_one_is_not_held():
    clip = synthetic_clip(20, size=(120, 160), seed=3)
    pred = clip.boxes.copy()
    pred[:, 0] -= pred[:, 2] / 2
    pred[:, 2] *= 2  # same centre, twice as wide: IoU 0.5, held
    pred[15:] = [0, 0, 2, 2]  # lost: not held
    e = shape_errors(pred, clip)
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
