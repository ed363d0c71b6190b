"""The online tracker on real and synthetic video; bounded memory; bad input; checkpoints that don't fit."""
import numpy as np
import pytest
import torch

import stif_core
from stif_core.checkpoint import load_model, load_weights, save_weights
from stif_core.data.sequences import load_sequences
from stif_core.data.synthetic import synthetic_clip
from stif_core.evaluation.harness import track_sequence
from stif_core.tracking.tracker import STIFTracker


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return stif_core.build_model("lite", "full").eval()


def check_boxes(boxes, frame_shape):
    h, w = frame_shape[:2]
    assert np.isfinite(boxes).all()
    assert (boxes[:, 2] > 0).all() and (boxes[:, 3] > 0).all()
    cx, cy = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
    assert (cx >= 0).all() and (cx <= w).all() and (cy >= 0).all() and (cy <= h).all()


@pytest.mark.data
@pytest.mark.parametrize("name", ["girl", "jogging-1"])  # girl: 128 x 96 frames
def test_tracks_real_video_with_diagnostics(model, name):
    seq = load_sequences([name])[0]
    seq.frames, seq.boxes = seq.frames[:40], seq.boxes[:40]
    results = []
    boxes, times = track_sequence(STIFTracker(model, "otb", "recent", keep_score_maps=True), seq, progress=False,
                                  on_frame=lambda i, r: results.append(r))
    check_boxes(boxes, seq.frame(0).shape)
    assert (times > 0).all()
    last = results[-1]
    assert last.memory_frames == [0, 36, 37, 38]  # the initial frame + the 3 most recent ones
    assert results[0].memory_frames == [0]
    assert last.temporal_weights.shape == (4,) and last.temporal_weights.sum() == pytest.approx(1, abs=1e-5)
    assert last.score_map.shape == (17, 17) and 0 <= last.score <= 1
    assert 0 <= last.peak[0] < 17 and 0 <= last.peak[1] < 17


def test_same_input_same_track(model):
    seq = synthetic_clip(15, size=(120, 160), seed=2)
    a, _ = track_sequence(STIFTracker(model), seq, progress=False)
    b, _ = track_sequence(STIFTracker(model), seq, progress=False)
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["recent", "stmtrack"])
def test_memory_never_grows_with_the_video(model, policy):
    seq = synthetic_clip(60, size=(96, 128), seed=1)
    tracker = STIFTracker(model, memory_policy=policy)
    tracker.init(seq.frame(0), seq.boxes[0])
    sizes, held = [], []
    for i in range(1, len(seq)):
        r = tracker.update(seq.frame(i))
        sizes.append(len(r.memory_frames))
        held.append(len(tracker.past.held))
    assert max(sizes) <= (4 if policy == "recent" else 5)
    assert max(held) <= (3 if policy == "recent" else 12)
    if policy == "stmtrack":  # segment middles spread over the whole history
        assert tracker.memory()[1].frame < 30


def test_box_stays_valid_when_the_target_leaves(model):
    seq = synthetic_clip(10, size=(96, 128), seed=0)
    tracker = STIFTracker(model)
    tracker.init(seq.frame(0), np.array([100.0, 70.0, 20.0, 20.0]))
    for frame in [np.zeros((96, 128, 3), np.uint8)] * 3 + [np.full((96, 128, 3), 255, np.uint8)] * 3:
        box = tracker.update(frame).box
        check_boxes(box[None], frame.shape)
        assert box[2] >= 10 and box[3] >= 10


@pytest.mark.parametrize("box, message", [
    ([np.nan, 1, 10, 10], "finite"),
    ([1, 1, 0, 10], "under one pixel wide or high"),
    ([1, 1, 10, -2], "under one pixel wide or high"),
    ([500, 500, 10, 10], "outside"),
])
def test_bad_initial_boxes_are_refused(model, box, message):
    with pytest.raises(ValueError, match=message):
        STIFTracker(model).init(np.zeros((96, 128, 3), np.uint8), np.array(box, float))


def test_partly_off_image_box_is_clipped_with_a_warning(model):
    """The warning names the caller's line, not the tracker's."""
    tracker = STIFTracker(model)
    with pytest.warns(UserWarning, match="partly off") as caught:
        tracker.init(np.zeros((96, 128, 3), np.uint8), np.array([-10.0, 80.0, 30.0, 30.0]))
    assert caught[0].filename == __file__
    r = tracker.update(np.zeros((96, 128, 3), np.uint8))
    check_boxes(r.box[None], (96, 128))


def test_unknown_tracker_options_are_named(model):
    with pytest.raises(ValueError, match="otb"):
        STIFTracker(model, params="vot")
    with pytest.raises(ValueError, match="recent"):
        STIFTracker(model, memory_policy="all")


def test_checkpoint_round_trip_and_misfit(tmp_path, model):
    path = tmp_path / "full.safetensors"
    save_weights(model, path, {"preset": "lite", "variant": "full", "model": "{}"})
    loaded = load_model(path)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v, rtol=0, atol=0)
    with pytest.raises(ValueError, match="unexpected .*fusion.memory_branch"):
        load_model(path, variant="baseline")
    paper = stif_core.build_model("paper", "full", pretrained=False)
    with pytest.raises(ValueError, match=r"shape or dtype mismatch .*neck.weight: file \(128"):
        load_weights(paper, path)
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        load_model(tmp_path / "nothing.safetensors")


def test_inspect_matches_update_and_leaves_the_state(model, tracked_clip):
    tracker, seq = tracked_clip(model, seed=4, policy="recent")
    look = tracker.inspect(seq.frame(5))
    again = tracker.inspect(seq.frame(5))
    np.testing.assert_array_equal(look.box, again.box)
    assert [e.frame for e in look.entries] == [0, 2, 3, 4]  # the initial frame + the 3 most recent ones
    assert look.output.attn_q2m is not None and look.output.query_spatial_map is not None
    dropped = tracker.inspect(seq.frame(5), entries=look.entries[:2])  # what if frames 3 and 4 were gone
    assert dropped.output.temporal_weights.shape == (1, 2)
    np.testing.assert_allclose(tracker.update(seq.frame(5)).box, look.box, rtol=1e-5)


def test_post_processing_maps_and_the_window_influence(model):
    """The chosen cell is the blended map's peak; without a penalty (penalty_k 0) the penalty map is one; window
    influence 0 leaves the penalised score, 1 only the centred window, whatever the network says; a value between
    blends the two."""
    from dataclasses import replace

    seq = synthetic_clip(6, size=(120, 160), seed=5)
    tracker = STIFTracker(model)
    tracker.init(seq.frame(0), seq.boxes[0])
    tracker.update(seq.frame(1))
    look = tracker.inspect(seq.frame(2))
    sel = look.selection
    assert sel.best == int(sel.windowed.argmax()) and bool(((sel.penalty > 0) & (sel.penalty <= 1)).all())
    params = tracker.params

    def select(**changes):
        tracker.params = replace(params, **changes)
        return tracker.select(look.output, look.window)

    assert bool((select(penalty_k=0.0).penalty == 1).all())
    raw, window = select(window_influence=0.0), select(window_influence=1.0)
    torch.testing.assert_close(raw.windowed, raw.penalty * raw.score_map)
    h = int(round(raw.score_map.numel() ** 0.5))
    assert window.best == h * h // 2 and torch.equal(window.windowed.reshape(h, h), window.windowed.reshape(h, h).T)
    low, high = float(raw.windowed.min()), float(window.windowed.max())
    mid = select(window_influence=0.5).windowed
    assert bool(((mid >= min(low, float(window.windowed.min())) - 1e-6) & (mid <= max(float(raw.windowed.max()),
                                                                                     high) + 1e-6)).all())
    assert not torch.allclose(mid, raw.windowed) and not torch.allclose(mid, window.windowed)


def test_memory_policies_pick_as_documented():
    from stif_core.tracking.memory import MemoryEntry, make_memory

    def entry(i, score=1.0):
        return MemoryEntry(i, torch.zeros(1), score, np.zeros((1, 1, 3), np.uint8), np.zeros(4))

    recent = make_memory("recent", 3)
    for i in range(1, 11):
        recent.add(entry(i))
    assert [e.frame for e in recent.pick(entry(0))] == [0, 8, 9, 10]
    past = make_memory("stmtrack", 3)
    for i in range(1, 13):  # the reservoir (4T = 12) filled; the last frame not confident
        past.add(entry(i, score=0.5))
    assert [e.frame for e in past.pick(entry(0))] == [0, 2, 6, 10]  # the middles of (0, 12]
    past.add(entry(13, score=0.9))  # one over: thinned evenly, the newest kept
    assert [e.frame for e in past.held] == [1, 3, 5, 7, 9, 11, 13]
    assert [e.frame for e in past.pick(entry(0))] == [0, 3, 7, 11, 13]  # middles 2.2, 6.5, 10.8; 13 confident
    with pytest.raises(ValueError, match=r"unknown memory policy 'fifo'; valid: \['recent', 'stmtrack'\]"):
        make_memory("fifo", 3)


def test_a_model_trained_on_square_crops_is_tracked_on_square_crops(tmp_path, model):
    """The crop geometry travels with the checkpoint: a square_crops model's tracker stretches every crop so
    that the first box is square in it, and the box it returns is in frame pixels again."""
    path, plain_path = tmp_path / "square.safetensors", tmp_path / "plain.safetensors"
    save_weights(stif_core.build_model("lite", "full", square_crops=True), path, {"preset": "lite", "variant": "full"})
    save_weights(stif_core.build_model("lite", "full"), plain_path, {"preset": "lite", "variant": "full"})
    square = load_model(path)
    assert square.cfg.square_crops and not load_model(plain_path).cfg.square_crops
    assert load_model("stif_lite_full").cfg.square_crops  # the shipped models are trained on square crops
    clip = synthetic_clip(6, seed=4)  # a first box 1.22 times taller than wide
    tracker = STIFTracker(square)
    tracker.init(clip.frame(0), clip.boxes[0])
    w, h = clip.boxes[0][2:]
    assert tracker.stretch == pytest.approx(h / w)
    x1, y1, x2, y2 = tracker.initial.box_crop
    assert (x2 - x1) / (y2 - y1) == pytest.approx(1.0)
    plain = STIFTracker(model)
    plain.init(clip.frame(0), clip.boxes[0])
    assert plain.stretch == 1.0
    check_boxes(np.stack([tracker.update(clip.frame(i)).box for i in range(1, 6)]), clip.frame(0).shape)
