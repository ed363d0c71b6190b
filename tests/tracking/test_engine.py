"""The ONNX Runtime engine: the same network as PyTorch (to float rounding), the same boxes on real video, and
clear refusals where it cannot run."""
import numpy as np
import pytest
import torch

import stif_core
from stif_core.data.sequences import load_sequences
from stif_core.tracking.engine import OnnxEngine, TorchEngine, make_engine
from stif_core.tracking.tracker import STIFTracker

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module", params=["neck", "first_conv"], ids=["one_encoder", "two_encoders"])
def model(request):
    torch.manual_seed(0)
    model = stif_core.build_model("lite", "full", mask_injection=request.param).eval()
    torch.nn.init.normal_(model.mask_projection.weight, std=0.1)  # a first-conv projection starts at zero
    return model


def test_each_session_matches_pytorch(model):
    s = model.cfg.crop_size
    g = torch.Generator().manual_seed(1)
    image, mask = torch.rand(1, 3, s, s, generator=g) * 255, torch.zeros(1, 1, s, s)
    mask[..., 50:110, 40:90] = 1
    fast, ref = OnnxEngine(model), TorchEngine(model)
    query = fast.query(image)  # (1, C, H, W)
    torch.testing.assert_close(query, ref.query(image), rtol=1e-4, atol=1e-4)
    memory = torch.stack([fast.memory(image * k, mask) for k in (1.0, 0.9, 0.8)], 1)  # (1, 3, C, H, W)
    torch.testing.assert_close(memory[:, 0], ref.memory(image, mask), rtol=1e-4, atol=1e-4)
    for engine in (fast, ref):  # the memory entry of a query crop, from what the query step computed on it
        torch.testing.assert_close(engine.memory(image, mask, engine.query(image)), ref.memory(image, mask),
                                   rtol=1e-4, atol=1e-4)
    for n in (1, 3):
        a, b = fast.step(memory[:, :n], query), ref.step(memory[:, :n], query)
        for x, y in ((a.cls, b.cls), (a.ctr, b.ctr), (a.reg, b.reg), (a.temporal_weights, b.temporal_weights)):
            torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_tracks_a_real_sequence_as_pytorch_does(model):
    seq = load_sequences(["crossing"])[0].head(15)
    boxes = {}
    for engine in ("torch", "onnx"):
        tracker = STIFTracker(model, engine=engine)
        tracker.init(seq.frame(0), seq.boxes[0])
        boxes[engine] = np.array([tracker.update(seq.frame(i)).box for i in range(1, len(seq))])
    np.testing.assert_allclose(boxes["onnx"], boxes["torch"], atol=0.05)


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="torch"):
        make_engine("tensorrt", stif_core.build_model("lite", "full", pretrained=False))


@pytest.mark.slow
def test_profile_names_every_part_of_a_frame(model):
    """bench --profile: each labelled part of ``update`` is found, on both engines; the step's parts only where
    PyTorch runs it."""
    from stif_core.lab.bench import PARTS, profile_tracking

    seq = load_sequences(["crossing"])[0].head(12)
    for engine in ("torch", "onnx"):
        parts = profile_tracking(STIFTracker(model, engine=engine), seq, 11)
        assert all(parts[k] > 0 for k in PARTS), parts
        assert ("step: fusion" in parts) == (engine == "torch")
        assert parts["update"] >= sum(parts[k] for k in PARTS)


def test_the_memory_curve_tracks_the_frames_asked_and_no_more(model):
    from stif_core.lab.bench import memory_curve

    seq = load_sequences(["crossing"])[0].head(12)
    assert [r["frames"] for r in memory_curve(STIFTracker(model), seq, 7, every=3, progress=False)] == [1, 3, 6, 7]
    assert memory_curve(STIFTracker(model), seq, 50, every=5, progress=False)[-1]["frames"] == 12


def test_a_speed_row_tracks_no_more_frames_than_asked():
    from stif_core.lab.bench import timed_frames

    assert [timed_frames(n, "paper", "cpu") for n in (3, 40, 100)] == [3, 10, 20]
    assert [timed_frames(3, "lite", "cpu"), timed_frames(100, "paper", "cuda")] == [3, 100]


def test_an_export_made_under_a_knockout_keeps_it(model):
    from stif_core.model.knockouts import knock_out

    s = model.cfg.crop_size
    g = torch.Generator().manual_seed(4)
    image, mask = torch.rand(1, 3, s, s, generator=g) * 255, torch.zeros(1, 1, s, s)
    mask[..., 60:100, 50:90] = 1
    with knock_out(model, "mask_empty"):  # track inside the block: step sessions are exported when first needed
        fast, ref = OnnxEngine(model), TorchEngine(model)
        expected = ref.memory(image, mask)
        torch.testing.assert_close(fast.memory(image, mask), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(expected, ref.memory(image, torch.zeros_like(mask)), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(ref.memory(image, mask), expected, atol=1e-3)  # hooks gone on leaving


def test_trackers_of_one_model_share_its_export_until_the_model_changes(model):
    """One export serves every tracker of a model (a fresh tracker per sequence); a knock-out's hooks or weights
    changed in place are a different network, exported anew."""
    from stif_core.model.knockouts import knock_out

    first, second = OnnxEngine(model), OnnxEngine(model)
    assert second.sessions is first.sessions
    with knock_out(model, "mask_empty"):
        assert OnnxEngine(model).sessions is not first.sessions
    twin = stif_core.build_model("lite", "full", mask_injection=model.cfg.mask_injection).eval()
    twin.load_state_dict(model.state_dict())
    before = OnnxEngine(twin).sessions
    with torch.no_grad():
        next(twin.parameters()).mul_(2.0)
    assert OnnxEngine(twin).sessions is not before


def test_onnx_frames_run_pytorch_on_one_thread_and_give_the_threads_back(model):
    """PyTorch's own ops of an ONNX tracker's frame run on one thread (more spin-wait on the cores ONNX Runtime
    needs next); the caller's thread count is back after every frame. The PyTorch engine, and an ONNX tracker that
    keeps the internals (a second step in PyTorch), leave the count alone."""
    seq = load_sequences(["crossing"])[0].head(3)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for engine, internals, inside in (("onnx", False, 1), ("torch", False, 2), ("onnx", True, 2)):
            tracker = STIFTracker(model, engine=engine, keep_internals=internals)
            seen = []
            tracker.select = lambda out, window, seen=seen, select=tracker.select: (
                seen.append(torch.get_num_threads()) or select(out, window))
            tracker.init(seq.frame(0), seq.boxes[0])
            assert torch.get_num_threads() == 2
            tracker.update(seq.frame(1))
            assert seen == [inside] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
