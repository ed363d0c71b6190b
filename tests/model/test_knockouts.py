"""Inference-time knock-outs: each switches off exactly its part (checked on the internals), applies only where
the variant has that part, and leaves the model as it was on leaving."""
import pytest
import torch

import stif_core
from stif_core.model.knockouts import KNOCKOUTS, knock_out, knockouts_for
from stif_core.tracking.tracker import DEFAULT_MEMORY_POLICY


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return stif_core.build_model("lite", "full").eval()


def inputs(model, seed: int = 1, n: int = 4):
    s = model.cfg.crop_size
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(1, n, 3, s, s, generator=g) * 255  # (1, N, 3, S, S)
    masks = torch.zeros(1, n, 1, s, s)
    masks[..., 50:110, 40:90] = 1
    return images, masks, torch.rand(1, 3, s, s, generator=g) * 255


def run(model, name, images, masks, query):
    with torch.no_grad(), knock_out(model, name):
        return model(images, masks, query, internals=True)


def branch_outputs(model, name, images, masks, query) -> dict[str, torch.Tensor]:
    """y1 (memory branch) and y2 (query branch) of one forward under a knock-out."""
    seen = {}
    handles = [getattr(model.fusion, f"{b}_branch").register_forward_hook(
        lambda m, a, out, b=b: seen.__setitem__(b, out[0])) for b in ("memory", "query")]
    run(model, name, images, masks, query)
    for h in handles:
        h.remove()
    return seen


def test_which_knockouts_apply():
    assert knockouts_for(stif_core.build_model("lite", "full", pretrained=False)) == list(KNOCKOUTS)
    base = stif_core.build_model("lite", "baseline", pretrained=False)
    assert knockouts_for(base) == ["no_q2m", "mask_empty"]
    with pytest.raises(ValueError, match="gate_half.*valid: \\['no_q2m', 'mask_empty'\\]"):
        with knock_out(base, "gate_half"):
            pass


def test_each_knockout_switches_off_its_part(model):
    images, masks, query = inputs(model)
    normal = run(model, None, images, masks, query)
    w = run(model, "temporal_uniform", images, masks, query).temporal_weights
    torch.testing.assert_close(w, torch.tensor([[0.0, 1 / 3, 1 / 3, 1 / 3]]))
    out = run(model, "spatial_one", images, masks, query)
    assert torch.equal(out.memory_spatial_map, torch.ones_like(out.memory_spatial_map))
    assert torch.equal(out.query_spatial_map, torch.ones_like(out.query_spatial_map))
    plain_map = normal.query_spatial_map  # (1, 1, H, W)
    flat = run(model, "spatial_mean", images, masks, query).query_spatial_map
    torch.testing.assert_close(flat, plain_map.mean().expand_as(plain_map))  # the same gain, no pattern
    out = run(model, "gate_half", images, masks, query)
    assert torch.equal(out.gate_memory, torch.full_like(out.gate_memory, 0.5))
    assert torch.equal(out.gate_query, torch.full_like(out.gate_query, 0.5))
    out = run(model, "mask_empty", images, masks, query)
    torch.testing.assert_close(out.cls, run(model, None, images, torch.zeros_like(masks), query).cls)
    for name in KNOCKOUTS:
        assert not torch.equal(run(model, name, images, masks, query).cls, normal.cls), name
    assert torch.equal(run(model, None, images, masks, query).cls, normal.cls)  # hooks gone on leaving


def test_a_zeroed_read_cuts_the_other_side_out(model):
    """no_q2m: the memory branch's output no longer depends on the memory; no_m2q: the query branch's output no
    longer depends on the query. Without the knock-out both do."""
    images, masks, query = inputs(model)
    other_images, _, other_query = inputs(model, seed=2)
    for name, branch, a, b in (("no_q2m", "memory", (images, masks, query), (other_images, masks, query)),
                               ("no_m2q", "query", (images, masks, query), (images, masks, other_query))):
        assert torch.equal(branch_outputs(model, name, *a)[branch], branch_outputs(model, name, *b)[branch])
        assert not torch.equal(branch_outputs(model, None, *a)[branch], branch_outputs(model, None, *b)[branch])


def test_eval_rows_per_knockout():
    from stif_core.evaluation.trackers import stif_trackers

    factories, signatures = stif_trackers(["stif_lite_full"], "otb", DEFAULT_MEMORY_POLICY, "cpu", knockouts="all")
    assert list(factories) == ["stif-full"] + [f"stif-full-ko-{k}" for k in KNOCKOUTS]
    assert signatures["stif-full-ko-gate_half"] == signatures["stif-full"] | {"knockout": "gate_half"}
    plain, knocked = factories["stif-full"]().model, factories["stif-full-ko-temporal_uniform"]().model
    assert plain is not knocked  # each row tracks with its own copy: the shipped model is never hooked
    images, masks, query = inputs(plain)
    images[:, 1] = images[:, 0]  # m_1 a copy of m_0: eq. 3 gives it the largest weight
    uniform = torch.tensor([[0.0, 1 / 3, 1 / 3, 1 / 3]])  # eq. 2's bounds: m_0 is the key, not weighted
    with torch.no_grad():
        torch.testing.assert_close(knocked(images, masks, query).temporal_weights, uniform)
        weights = plain(images, masks, query).temporal_weights  # (1, 4)
    assert weights.argmax() == 1 and weights[0, 1] > 0.5, weights
    with pytest.raises(ValueError, match="'all' stands alone"):  # not "unknown knock-out 'all'"
        stif_trackers(["stif_lite_full"], "otb", DEFAULT_MEMORY_POLICY, "cpu", knockouts="all,bogus")
