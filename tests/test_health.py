"""The health report: its measures checked by hand, and the report on a real model."""
import math

import pytest
import torch

from stif_core.checkpoint import load_model
from stif_core.data.synthetic import synthetic_clip
from stif_core.health import Bounds, entropy_ratio, format_report, report, sample_frames
from stif_core.model.head import cell_centers, cells_in_box


def test_entropy_ratio_is_zero_for_one_hot_and_one_for_uniform():
    rows = torch.tensor([[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0, 0]])
    torch.testing.assert_close(entropy_ratio(rows), torch.tensor([0.0, 1.0, math.log(2) / math.log(4)]))


def test_cells_in_box_and_the_nearest_cell_for_a_small_box():
    centers = cell_centers(3, 8.0, 8)  # cells at 8, 16, 24 on each axis
    assert cells_in_box(centers, (7, 7, 17, 9), 8).nonzero().flatten().tolist() == [0, 1]
    assert cells_in_box(centers, (10, 10, 11, 11), 8).nonzero().flatten().tolist() == [0]  # nearest to (10.5, 10.5)
    assert not cells_in_box(centers, (100, 100, 110, 110), 8).any()  # off the grid


def test_sample_frames_need_t_earlier_visible_frames():
    clip = synthetic_clip(20, size=(96, 128), seed=0)
    frames = sample_frames(clip, 4, 3)
    assert len(frames) == 4 and min(frames) >= 4
    assert all(not clip.absent[i - 4:i + 1].any() for i in frames)


def test_report_on_the_shipped_model_flags_its_saturated_maps():
    clip = synthetic_clip(30, size=(120, 160), seed=1)
    summary = report(load_model("stif_lite_full"), [clip], per_sequence=3, bounds=Bounds())
    assert summary["samples"] == 3
    assert 0 <= summary["peak_on_target"] <= 1 and 0 <= summary["attention_entropy"] <= 1
    assert summary["memory_map_saturated"] == pytest.approx(1.0)  # the demo model's SDE is saturated
    assert not summary["checks"]["memory_map cells above 0.99"]["ok"]
    assert "UNHEALTHY" in format_report(summary)
