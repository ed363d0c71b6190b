"""The lite tracker's fast path: TF "same" padding done by the conv itself (the same numbers), and a smaller search
crop at the training scale (``tracking.search``, ``STIFTracker(search_size=...)``, ``eval --search-size``)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import stif_core
from stif_core.checkpoint import load_model
from stif_core.data.sequences import load_sequences
from stif_core.evaluation.metrics import rect_iou
from stif_core.model import STIF
from stif_core.model.backbone import SameConv2d, pad_same
from stif_core.model.knockouts import knocked_out
from stif_core.tracking.engine import TorchEngine
from stif_core.tracking.search import SearchRegion, network_for
from stif_core.tracking.tracker import DEFAULT_MEMORY_POLICY, STIFTracker


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return stif_core.build_model("lite", "full", pretrained=False).eval()


@pytest.mark.parametrize("size", [129, 128, 17])
@pytest.mark.parametrize("k, stride, dilation", [(3, 1, 1), (3, 2, 1), (5, 2, 1), (5, 1, 2), (3, 1, 2)])
def test_same_padding_by_the_conv_equals_the_explicit_pad(size, k, stride, dilation):
    torch.manual_seed(size + k)
    conv = SameConv2d(6, 6, k, stride=stride, dilation=dilation, groups=6, bias=False)
    x = torch.randn(2, 6, size, size)
    expected = F.conv2d(pad_same(x, k, stride, dilation), conv.weight, None, stride, 0, dilation, 6)
    out = conv(x)
    assert out.shape[-1] == -(-size // stride)  # ceil(size / stride): TF "same"
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def small(model, size=129):
    """The network a tracker searching crops of ``size`` runs."""
    return network_for(model, SearchRegion.of(model.cfg, size))


def test_the_network_for_a_smaller_region_is_the_model_built_for_that_crop(model):
    twin = small(model)
    assert (twin.cfg.crop_size, twin.cfg.score_size) == (129, 13) and model.cfg.crop_size == 161
    assert network_for(model, SearchRegion.of(model.cfg)) is model
    fresh = STIF(twin.cfg)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    g = torch.Generator().manual_seed(2)
    image, mask = torch.rand(1, 3, 129, 129, generator=g) * 255, torch.zeros(1, 1, 129, 129)
    mask[..., 40:90, 50:80] = 1
    with torch.no_grad():
        outs = []
        for m in (twin, fresh):
            engine = TorchEngine(m)
            query = engine.query(image)  # F_q (1, C, 13, 13)
            memory = torch.stack([engine.memory(image, mask, query)] * 2, 1)  # (1, 2, C, 13, 13)
            outs.append(engine.step(memory, query))
    assert outs[0].cls.shape[-2:] == (13, 13)
    for a, b in ((outs[0].cls, outs[1].cls), (outs[0].reg, outs[1].reg)):
        torch.testing.assert_close(a, b)
    # the grid stays centred: the 13 x 13 cells are the 17 x 17 grid's central ones, 16 pixels nearer the corner
    torch.testing.assert_close(twin.centers + 16, model.centers.reshape(17, 17, 2)[2:-2, 2:-2].reshape(-1, 2))


def test_a_region_that_does_not_fit_the_grid_is_refused(model):
    with pytest.raises(ValueError, match=r"161 \+ or - a multiple of 16, at least 49"):
        SearchRegion.of(model.cfg, 130)
    with pytest.raises(ValueError, match="at least 49"):
        SearchRegion.of(model.cfg, 33)
    with pytest.raises(ValueError, match="crop size 130"):
        STIFTracker(model, search_size=130)


def test_a_knockout_survives_a_new_crop(model):
    g = torch.Generator().manual_seed(3)
    image, mask = torch.rand(1, 3, 129, 129, generator=g) * 255, torch.zeros(1, 1, 129, 129)
    mask[..., 40:90, 50:80] = 1
    engine = TorchEngine(small(knocked_out(model, "mask_empty")))
    torch.testing.assert_close(engine.memory(image, mask), engine.memory(image, torch.zeros_like(mask)))
    plain = TorchEngine(small(model))
    assert not torch.allclose(plain.memory(image, mask), plain.memory(image, torch.zeros_like(mask)), atol=1e-3)


def test_a_smaller_search_keeps_the_training_scale(model):
    seq = load_sequences(["crossing"])[0].head(2)
    whole, small = STIFTracker(model), STIFTracker(model, search_size=129)
    for t in (whole, small):
        t.init(seq.frame(0), seq.boxes[0])
    a, b = whole.query_window(), small.query_window()
    assert b.scale == pytest.approx(a.scale)  # crop pixels per frame pixel: the target's size in the crop
    assert b.side == pytest.approx(a.side * 129 / 161)
    assert small.initial.features.shape[-2:] == (13, 13) and small.initial.crop.shape[:2] == (129, 129)


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_the_shipped_model_tracks_real_video_with_a_smaller_search(engine):
    pytest.importorskip("onnxruntime")
    full = load_model("stif_lite_full")
    seq = load_sequences(["crossing"])[0].head(40)
    tracker = STIFTracker(full, engine=engine, search_size=129)
    tracker.init(seq.frame(0), seq.boxes[0])
    boxes = np.array([tracker.update(seq.frame(i)).box for i in range(1, len(seq))])
    centre = lambda b: b[:, :2] + b[:, 2:] / 2  # noqa: E731
    errors = np.linalg.norm(centre(boxes) - centre(seq.boxes[1:]), axis=1)
    overlaps = rect_iou(boxes, seq.boxes[1:])
    # the target stays in the smaller region; its size drifts more than at 161 (docs/design.md, section 8)
    assert np.mean(errors <= 20) >= 0.9 and overlaps.mean() > 0.5, (errors.round(1), overlaps.round(2))


def test_eval_rows_name_the_search_size():
    from stif_core.evaluation.trackers import stif_trackers

    factories, signatures = stif_trackers(["stif_lite_full"], "otb", DEFAULT_MEMORY_POLICY, "cpu", search_size=129)
    assert list(factories) == ["stif-full-s129"] and signatures["stif-full-s129"]["search_size"] == 129
    assert factories["stif-full-s129"]().model.cfg.crop_size == 129
    factories, signatures = stif_trackers(["stif_lite_full"], "otb", DEFAULT_MEMORY_POLICY, "cpu", search_size=161)
    assert list(factories) == ["stif-full"] and "search_size" not in signatures["stif-full"]


def test_the_model_keeps_its_trained_crop_whatever_the_tracker_searches(model, tmp_path):
    """The tracker owns its search region: the model it was given is unchanged, can be saved as it is, and a
    second tracker of another region on the same model keeps the training scale."""
    from stif_core.checkpoint import save_weights

    seq = load_sequences(["crossing"])[0].head(2)
    scales = []
    for tracker in (STIFTracker(model, search_size=129), STIFTracker(model, search_size=145), STIFTracker(model)):
        tracker.init(seq.frame(0), seq.boxes[0])
        scales.append(tracker.query_window().scale)
    assert scales == pytest.approx([scales[-1]] * 3)
    assert model.cfg.crop_size == 161 and model.cfg.score_size == 17
    save_weights(model, tmp_path / "m.safetensors", {"preset": "lite", "variant": "full"})
    assert load_model(tmp_path / "m.safetensors").cfg.crop_size == 161


@pytest.mark.subprocess
def test_a_bad_search_size_is_one_error_line(tmp_path):
    from helpers import cli

    for command in (["eval", "--sequences", "deer", "--checkpoint", "stif_lite_full", "--search-size", "130",
                     "--out", "x"], ["bench", "--frames", "2", "--search-size", "130"]):
        run = cli(*command, cwd=tmp_path)
        assert run.returncode == 2 and "crop size 130 does not fit" in run.stderr, run.stderr
        assert run.stderr.count("\n") == 1 and not (tmp_path / "x").exists()
