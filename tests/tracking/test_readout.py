"""A tracking step's internals in numbers and maps (``tracking.readout``), checked on hand-made attention and on a
real step."""
import math

import numpy as np
import torch

from stif_core.checkpoint import load_model
from stif_core.data.crops import xywh_to_xyxy
from stif_core.data.synthetic import synthetic_clip
from stif_core.model.head import cells_in_box
from stif_core.tracking.memory import MemoryEntry
from stif_core.tracking.readout import (
    attention_on_target,
    entropy_ratio,
    frame_weights,
    memory_target_cells,
    step_readout,
)
from stif_core.tracking.tracker import STIFTracker


def test_entropy_ratio_is_zero_for_one_hot_and_one_for_uniform():
    rows = torch.tensor([[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0, 0]])
    torch.testing.assert_close(entropy_ratio(rows), torch.tensor([0.0, 1.0, math.log(2) / math.log(4)]))


def test_attention_on_target_reads_only_the_query_cells_in_the_box():
    attn = torch.tensor([[1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0, 1.0]])  # 3 query cells x 4 memory cells
    query = torch.tensor([True, True, False])
    memory = torch.tensor([True, False, False, False])
    entropy, mass, uniform = attention_on_target(attn, query, memory)
    assert math.isclose(entropy, (0 + math.log(2) / math.log(4)) / 2, rel_tol=1e-6)
    assert (mass, uniform) == (0.75, 0.25)  # (1 + 0.5) / 2 on the one target cell of four


def test_memory_target_cells_per_frame_or_from_the_initial_box_for_a_fused_map():
    centers = torch.tensor([[4.0, 4.0], [12.0, 4.0], [4.0, 12.0], [12.0, 12.0]])  # a 2x2 grid, stride 8
    entries = [MemoryEntry(k, None, 1.0, None, np.array(b, float)) for k, b in
               enumerate([(0, 0, 8, 8), (8, 8, 16, 16), (8, 0, 16, 8)])]
    per_frame = memory_target_cells(entries, 12, centers, 8)  # attention over every frame's cells
    assert per_frame.view(3, 4).nonzero().tolist() == [[0, 0], [1, 3], [2, 1]]
    fused = memory_target_cells(entries, 4, centers, 8)  # one fused map: the initial frame's box stands for it
    assert fused.tolist() == [True, False, False, False]


def test_frame_weights_average_position_weights_per_frame():
    w = torch.rand(3, 5, 5)
    torch.testing.assert_close(frame_weights(w), w.mean((1, 2)))
    torch.testing.assert_close(frame_weights(torch.tensor([0.2, 0.8])), torch.tensor([0.2, 0.8]))


def test_a_real_step_reads_out_within_its_definitions():
    clip = synthetic_clip(8, seed=2)
    model = load_model("stif_lite_full")
    tracker = STIFTracker(model, keep_internals=True)
    tracker.init(clip.frame(0), clip.boxes[0])
    for i in range(1, 6):
        tracker.update(clip.frame(i))
    look, centers, stride = tracker.last, model.centers.cpu(), model.cfg.stride
    target = look.window.to_crop(xywh_to_xyxy(look.box))  # the tracker's own box, as ``track`` reads it
    row, maps = step_readout(look, centers, stride, target)
    assert math.isclose(float(row["temporal_weights"].sum()), 1, abs_tol=1e-5)
    assert len(row["temporal_weights"]) == len(look.entries)
    assert 0 <= row["attention_entropy"] <= 1 and 0 <= row["attention_mass"] <= 1
    assert 0 < row["gate_memory"] < 1 and 0 < row["gate_query"] < 1
    n = model.cfg.score_size
    assert maps["read"].shape == maps["query_map"].shape == (n, n)
    inside = cells_in_box(centers, target, stride).reshape(n, n).numpy()
    assert math.isclose(float(maps["read"][inside].mean()), row["attention_mass"], rel_tol=1e-5)  # one definition
