"""The readings ledger: each switchable reading changes exactly its own computation, on a copy of the model."""
import pytest
import torch

import stif_core
from stif_core.checkpoint import load_model
from stif_core.model.enhance import temporal_weights
from stif_core.model.readings import READINGS, current, other, readings_for, with_reading


@pytest.fixture(scope="module")
def model():
    return load_model("stif_lite_full")  # trained: an untrained head barely reacts to any of this


def inputs(model, seed=3):
    s = model.cfg.crop_size
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(1, 4, 1, s, s)
    masks[..., 50:110, 40:90] = 1
    return torch.rand(1, 4, 3, s, s, generator=g) * 255, masks, torch.rand(1, 3, s, s, generator=g) * 255


def test_each_reading_is_switched_on_a_copy_and_changes_the_output(model):
    images, masks, query = inputs(model)
    with torch.no_grad():
        plain = model(images, masks, query, internals=True)
        for name in readings_for(model):
            twin = with_reading(model, name)
            out = twin(images, masks, query, internals=True)
            assert not torch.allclose(out.cls, plain.cls), name
        again = model(images, masks, query, internals=True)
    torch.testing.assert_close(again.cls, plain.cls)  # the original model is untouched


def test_switched_readings_compute_what_they_name(model):
    images, masks, query = inputs(model)
    with torch.no_grad():
        memory = model.encode_memory(images, masks)  # (1, N, C, H, W)
        query_f = model.encode_query(query)
        out = with_reading(model, "eq2_bounds").step(memory, query_f, internals=True)
        torch.testing.assert_close(out.temporal_weights, temporal_weights(memory, "frame", "scaled_cosine", True))
        assert out.temporal_weights[0, 0] > 0  # m_0 weighted too
        out = with_reading(model, "granularity").step(memory, query_f, internals=True)
        assert out.temporal_weights.shape == (1, 4, *memory.shape[-2:])
        out = with_reading(model, "gate").step(memory, query_f, internals=True)
        assert out.gate_memory is None and out.gate_query is None
        twin = with_reading(model, "sde_norm")
        assert isinstance(twin.sde_query.norm, torch.nn.Identity) and twin.sde_query.conv.bias is None


def test_readings_a_variant_lacks_are_refused():
    baseline = stif_core.build_model("lite", "baseline", pretrained=False)
    assert readings_for(baseline) == ["eq8_logits"]
    with pytest.raises(ValueError, match=r"reading 'gate' cannot be switched on the baseline variant"):
        with_reading(baseline, "gate")
    assert set(readings_for(stif_core.build_model("lite", "full", pretrained=False))) == set(READINGS)


def test_the_ledger_names_both_values(model):
    assert (current(model, "granularity"), other(model, "granularity")) == ("frame", "position")
    assert (current(model, "eq8_logits"), other(model, "eq8_logits")) == ("cosine", "dot")
    assert (current(model, "gate"), other(model, "gate")) == ("True", "False")


def test_inspect_runs_the_step_of_another_reading_on_the_same_memory(model, tracked_clip):
    tracker, clip = tracked_clip(model, seed=0)
    plain = tracker.inspect(clip.frame(5))
    other_way = tracker.inspect(clip.frame(5), model=with_reading(model, "eq2_bounds"))
    assert [e.frame for e in other_way.entries] == [e.frame for e in plain.entries]
    assert other_way.output.temporal_weights[0, 0] > 0 == plain.output.temporal_weights[0, 0]
    torch.testing.assert_close(tracker.inspect(clip.frame(5)).output.cls, plain.output.cls)  # engine restored
    with pytest.raises(ValueError, match="memory features do not fit"):
        tracker.inspect(clip.frame(5), model=stif_core.build_model("paper", "full", pretrained=False))


def test_readings_taken_one_way_name_real_switches():
    import dataclasses
    import re

    from stif_core.config import ModelConfig
    from stif_core.model.readings import FIXED_READINGS

    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    named = {s for r in FIXED_READINGS.values() for s in re.findall(r"`(\w+)=", r.ours + r.other)}
    assert named == {"mask_injection", "memory_policy"} and named - {"memory_policy"} <= fields
    assert not set(FIXED_READINGS) & set(READINGS)  # a reading is switchable or taken one way, not both
