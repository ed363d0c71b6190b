"""The health report: its measures checked by hand, and the report on a real model."""
import math

import numpy as np
import pytest
import torch

from stif_core.checkpoint import load_model
from stif_core.data.synthetic import synthetic_clip
from stif_core.lab.health import (
    Bounds,
    aspect_error,
    drifted_box,
    format_report,
    measure,
    report,
    sample_frames,
)
from stif_core.model.head import cell_centers, cells_in_box


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


def test_drifted_box_moves_two_sides_towards_the_most_room():
    assert drifted_box(np.array([10, 40, 20, 10]), (100, 200)).tolist() == [50, 40, 20, 10]  # right: 170 px
    assert drifted_box(np.array([150, 40, 20, 10]), (100, 200)).tolist() == [110, 40, 20, 10]  # left: 150 px
    assert drifted_box(np.array([5, 5, 190, 10]), (100, 200)).tolist() == [5, 25, 190, 10]  # down: 8.5 heights


def test_box_fit_is_measured_on_the_chosen_cell_before_smoothing():
    """The aspect error is that of the box the chosen cell regresses, against the query's truth: a regression
    whose left and right offsets grow by e^2 (every box 7.4x wider) errs by about 2 more in log aspect."""
    clip = synthetic_clip(12, size=(120, 160), seed=2)
    model = load_model("stif_lite_full")
    row = measure(model, clip, 8)
    assert row["aspect_error"] < 1.0 and row["center_error"] >= 0 and row["drifted_weight"] > 0  # a sane box
    with torch.no_grad():
        model.head.reg_pred.bias[[0, 2]] += 2 / model.head.reg_scale
    wider = measure(model, clip, 8)
    assert wider["aspect_error"] > 2 - row["aspect_error"] - 0.05
    assert wider["turned_aspect_error"] > 2 - row["turned_aspect_error"] - 0.05  # turned: the height grows
    assert aspect_error(20, 10, np.array([0, 0, 10, 10])) == pytest.approx(math.log(2))
    assert aspect_error(10, 20, np.array([0, 0, 20, 10])) == pytest.approx(math.log(4))


@pytest.mark.slow
def test_report_flags_a_saturated_map_that_the_shipped_model_does_not_have():
    """The shipped full model's SDE maps are not saturated; shifting the memory SDE's BatchNorm by +50 (the
    logits of a model without SDE's BatchNorm) makes every cell 1.0, and the report says so."""
    clip = synthetic_clip(30, size=(120, 160), seed=1)
    model = load_model("stif_lite_full")
    summary = report(model, [clip], per_sequence=3, bounds=Bounds(min_samples=3))
    assert summary["samples"] == 3
    assert 0 <= summary["peak_on_target"] <= 1 and 0 <= summary["attention_entropy"] <= 1
    assert summary["memory_map_saturated"] < 0.5 and summary["checks"]["memory_map cells above 0.99"]["ok"]
    with torch.no_grad():
        model.sde_memory.norm.bias += 50.0
    summary = report(model, [clip], per_sequence=3, bounds=Bounds(min_samples=3))
    assert summary["memory_map_saturated"] == pytest.approx(1.0)
    assert not summary["checks"]["memory_map cells above 0.99"]["ok"]
    assert "UNHEALTHY" in format_report(summary)


def test_badges_flag_what_a_figure_cannot_show():
    from stif_core.lab.health import attention_badge, attribution_badge, map_badge, weights_badge

    assert not map_badge("xi_1", torch.full((17, 17), 0.999)).ok  # the shipped model's saturated map
    assert not map_badge("xi_1", torch.full((17, 17), 0.4)).ok  # flat
    blob = torch.zeros(17, 17)
    blob[6:10, 6:10] = 0.9
    assert map_badge("xi_1", blob).ok
    assert str(map_badge("xi_1", torch.ones(4, 4))).startswith("[WARNING] xi_1: 100% of cells")
    one_hot, uniform = torch.eye(5), torch.full((5, 5), 0.2)
    assert not attention_badge("q2m", one_hot).ok and "one-hot" in attention_badge("q2m", one_hot).text
    assert not attention_badge("q2m", uniform).ok and "uniform" in attention_badge("q2m", uniform).text
    assert attention_badge("q2m", torch.tensor([[0.7, 0.2, 0.05, 0.05]])).ok
    assert not weights_badge(torch.tensor([0.0, 0.95, 0.03, 0.02])).ok
    assert weights_badge(torch.tensor([0.0, 0.5, 0.3, 0.2])).ok
    assert weights_badge(torch.tensor([0.9, 0.05, 0.05]), first=1).ok  # m_0 (the key) is not counted
    assert attribution_badge(0.98, 1.0).ok
    assert not attribution_badge(0.5, 1.0).ok and "50%" in attribution_badge(0.5, 1.0).text
    assert not attribution_badge(0.0, 1e-5).ok
