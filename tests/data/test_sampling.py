"""Training samples: their layout, determinism and augmentations (data/sampling.py, data/crops.py)."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from stif_core.config import PRESETS
from stif_core.data.crops import CropWindow, crop, xywh_to_xyxy
from stif_core.data.sampling import SamplingConfig, TrackingSamples
from stif_core.data.synthetic import synthetic_clip


def test_a_stretched_window_multiplies_the_aspect_and_keeps_the_area():
    """A crop window with ``stretch`` s maps a box to one whose w / h is s times its own and whose area is that of
    the unstretched crop; the pixels follow the boxes (a white rectangle in the frame), and to_frame inverts it."""
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[80:120, 130:150] = 255  # a 20 x 40 (w x h) rectangle at (130, 80)
    box = xywh_to_xyxy(np.array([130.0, 80.0, 20.0, 40.0]))
    for s in (0.5, 1.0, 2.0):
        window = CropWindow(140.0, 100.0, 120.0, 121, s)
        b = window.to_crop(box)
        w, h = b[2] - b[0], b[3] - b[1]
        assert w / h == pytest.approx(s * 0.5) and w * h == pytest.approx((20 * 40) * window.scale ** 2)
        np.testing.assert_allclose(window.to_frame(b), box)
        ys, xs = np.nonzero(crop(frame, window)[..., 0] > 127)
        assert xs.max() - xs.min() + 1 == pytest.approx(w, abs=1.5)
        assert ys.max() - ys.min() + 1 == pytest.approx(h, abs=1.5)


def test_square_crops_make_the_initial_target_square_and_stretch_the_rest_alike():
    """square_crops: the initial frame's mask is square in its crop (an aspect of 1 +- whole pixels), and the query
    box keeps its own aspect over the initial one's (the synthetic target's aspect is constant)."""
    clip = synthetic_clip(40, size=(120, 160), seed=11)  # a target 1.56 times wider than tall
    square = replace(PRESETS["lite"], square_crops=True)  # the sampler takes the model's crop geometry
    ds = TrackingSamples([clip], SamplingConfig(negative_ratio=0.0, flip=0.0), length=12, seed=3, model=square)
    for k in range(12):
        item = ds[k]
        ys, xs = torch.nonzero(item["memory_masks"][0, 0], as_tuple=True)
        w, h = float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)
        assert abs(np.log(w / h)) < 0.12
        x1, y1, x2, y2 = item["query_box"].tolist()
        assert abs(np.log((x2 - x1) / (y2 - y1))) < 0.12


def test_samples_are_deterministic_and_well_formed():
    clip = synthetic_clip(40, size=(120, 160), seed=5)
    ds = TrackingSamples([clip], SamplingConfig(negative_ratio=0.0), length=4, seed=9)
    a, b = ds[2], ds[2]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert a["memory_images"].shape == (4, 3, 161, 161) and a["memory_images"].dtype == torch.uint8
    assert a["memory_masks"].shape == (4, 1, 161, 161)
    assert 0 < a["memory_masks"].mean() < 0.5  # the target covers part of each memory crop
    x1, y1, x2, y2 = a["query_box"].tolist()
    assert 0 < x2 - x1 < 161 and 0 < y2 - y1 < 161 and bool(a["positive"])


def test_mask_jitter_moves_only_the_reference_masks():
    """mask_jitter: the reference frames' masks are boxes moved by at most j/2 of their size and resized by at
    most 1 + j per side; the initial frame's mask, the crops and the query stay as without it."""
    clip = synthetic_clip(40, size=(120, 160), seed=5)
    plain = TrackingSamples([clip], SamplingConfig(negative_ratio=0.0, flip=0.0), length=6, seed=3)
    j = 0.3
    sloppy = TrackingSamples([clip], SamplingConfig(negative_ratio=0.0, flip=0.0, mask_jitter=j),
                             length=6, seed=3)
    moved = 0
    for k in range(6):
        a, b = plain[k], sloppy[k]
        for key in ("memory_images", "query_image", "query_box"):
            assert torch.equal(a[key], b[key]), key
        assert torch.equal(a["memory_masks"][0], b["memory_masks"][0])  # the annotation's box
        for m0, m1 in zip(a["memory_masks"][1:], b["memory_masks"][1:]):
            moved += int(not torch.equal(m0, m1))
            ys, xs = torch.nonzero(m0[0], as_tuple=True)
            ys1, xs1 = torch.nonzero(m1[0], as_tuple=True)
            w0, w1 = float(xs.max() - xs.min() + 1), float(xs1.max() - xs1.min() + 1)
            assert w0 / (1 + j) - 2 <= w1 <= w0 * (1 + j) + 2  # whole pixels: up to one per side
            shift = abs(float(xs1.min() + xs1.max()) - float(xs.min() + xs.max())) / 2
            assert shift <= j / 2 * w0 + 1.5  # resizing keeps the centre
    assert moved >= 15  # of 18 reference masks


def test_same_frame_negatives_miss_the_target():
    clip = synthetic_clip(40, size=(240, 320), seed=6)
    cfg = SamplingConfig(negative_ratio=1.0, same_frame_negatives=1.0)
    ds = TrackingSamples([clip], cfg, length=8, seed=1)
    rng = np.random.default_rng(0)
    for i in range(0, 40, 5):
        w = ds.window_off_target(clip, i, rng)
        x, y, bw, bh = clip.boxes[i]
        apart_x = w.cx + w.side / 2 < x or w.cx - w.side / 2 > x + bw
        apart_y = w.cy + w.side / 2 < y or w.cy - w.side / 2 > y + bh
        assert apart_x or apart_y
        assert -w.side / 4 <= w.cx <= 320 + w.side / 4 and -w.side / 4 <= w.cy <= 240 + w.side / 4
    items = [ds[k] for k in range(8)]
    assert not any(bool(i["positive"]) for i in items) and all(int(i["skipped"]) == 0 for i in items)
    full = synthetic_clip(10, size=(120, 160), seed=6)
    full.boxes[:] = [0, 0, 160, 120]  # the target fills the frame: no room for a crop off it
    assert TrackingSamples([full], cfg, length=1).window_off_target(full, 3, rng) is None
