"""The readings of docs/design.md sections 2-5: each switch checked by hand, the mask's effect, the encoders a
preset composes, and checkpoints of an earlier design refused."""
import json
import math
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file, save_file

import stif_core
from stif_core.checkpoint import load_model, load_weights, read_metadata, save_weights
from stif_core.config import make_config
from stif_core.data.crops import box_mask, crop, window_around, xywh_to_xyxy
from stif_core.data.sequences import load_sequences
from stif_core.model.backbone import mask_share
from stif_core.model.enhance import SpatialAttention
from stif_core.model.fusion import Attention
from stif_core.model.head import grid_offset
from stif_core.paths import checkpoint_path


def test_sde_batchnorm_normalises_the_logits_over_the_batch():
    """Eqs. 4-7 with CBAM's BatchNorm: xi = sigmoid((z - mean) / sqrt(var + eps)), z the 7x7 conv's output."""
    torch.manual_seed(0)
    sde = SpatialAttention(norm=True).train()
    x = torch.randn(3, 16, 9, 9) * 50  # unnormalised: without BN the logits would reach hundreds
    out, xi = sde(x)
    z = sde.conv(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)).detach()  # (3, 1, 9, 9)
    expected = torch.sigmoid((z - z.mean()) / torch.sqrt(z.var(unbiased=False) + sde.norm.eps))
    torch.testing.assert_close(xi.detach(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out, xi * x)
    assert sde.conv.bias is None  # BN's shift replaces it
    bare = SpatialAttention(norm=False)
    assert isinstance(bare.norm, torch.nn.Identity) and bare.conv.bias is not None


def test_cosine_attention_by_hand_and_bounded():
    g = torch.Generator().manual_seed(3)
    q, kv = torch.randn(2, 6, 16, generator=g), torch.randn(2, 9, 16, generator=g)
    att = Attention("cosine")
    with torch.no_grad():
        att.log_tau.fill_(math.log(4.0))
    out, attn = att(q, kv, explicit=True)
    cos = torch.nn.functional.cosine_similarity(q[:, :, None], kv[:, None], dim=-1)  # (2, 6, 9)
    expected = torch.softmax(4.0 * cos, -1)
    torch.testing.assert_close(attn, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out, expected @ kv, rtol=1e-5, atol=1e-6)
    fast, none = att(q, kv)
    assert none is None
    torch.testing.assert_close(fast, out, rtol=1e-5, atol=1e-5)
    _, big = att(q * 1000, kv * 1000, explicit=True)  # logits do not grow with the features' norm
    torch.testing.assert_close(big, attn, rtol=1e-4, atol=1e-5)
    _, dot = Attention("dot")(q * 1000, kv, explicit=True)
    assert dot.amax(-1).min() > 0.999  # as written: one-hot
    with pytest.raises(ValueError, match="cosine"):
        Attention("l2")


def test_temperature_is_learned():
    torch.manual_seed(0)
    model = stif_core.build_model("lite", "full", pretrained=False).train()
    s = model.cfg.crop_size
    out = model(torch.rand(2, 4, 3, s, s) * 255, torch.ones(2, 4, 1, s, s), torch.rand(2, 3, s, s) * 255)
    out.cls.sum().backward()
    for branch in (model.fusion.memory_branch, model.fusion.query_branch):
        assert branch.attend.log_tau.grad is not None and branch.attend.log_tau.grad.abs() > 0


def test_the_preset_composes_the_encoders():
    """The mask at the neck: one encoder for memory and query and the mask's term after it; at the first conv
    (paper): an encoder each, the memory trunk taking the masks, so no cached trunk features can serve it."""
    lite = stif_core.build_model("lite", "full", pretrained=False)
    paper = stif_core.build_model("paper", "full", pretrained=False)
    assert lite.memory_encoder is None and lite.mask_term is not None and lite.encoders == [lite.query_encoder]
    assert {k.split(".")[0] for k in lite.state_dict()} >= {"query_encoder", "mask_term"}
    assert not any(k.startswith("memory_encoder") for k in lite.state_dict())
    assert paper.mask_term is None and paper.memory_encoder.trunk.mask_proj is not None
    assert paper.query_encoder.trunk.mask_proj is None
    assert paper.mask_projection is paper.memory_encoder.trunk.mask_proj.conv
    with pytest.raises(ValueError, match="only where they share one encoder"):
        paper.trunk_features(torch.zeros(1, 3, 289, 289))
    with pytest.raises(ValueError, match="it needs the crops, not cached features"):
        paper.encode_memory(None, torch.zeros(1, 1, 1, 289, 289), torch.zeros(1, 1, 768, 25, 25))


def test_one_trunk_pass_serves_query_and_memory():
    model = stif_core.build_model("lite", "full").eval()
    s = model.cfg.crop_size
    image, mask = torch.rand(1, 3, s, s) * 255, torch.zeros(1, 1, s, s)
    mask[..., 60:100, 50:110] = 1
    with torch.no_grad():
        f = model.trunk_features(image)  # (1, Ct, H', W')
        torch.testing.assert_close(model.encode_query(None, features=f), model.encode_query(image))
        torch.testing.assert_close(model.encode_memory(None, mask[:, None], features=f[:, None]),
                                   model.encode_memory(image[:, None], mask[:, None]))


@pytest.mark.parametrize("preset", ["lite", "paper"])
def test_memory_is_the_query_features_plus_the_mask_term_where_they_share_the_encoder(tmp_path, preset):
    """Mask at the neck: F_m = F_q + proj(share), so an empty mask gives F_q plus the projection's bias, and
    ``remember`` (the tracker's path: the query's F_q reused) equals ``encode_memory``; the model saves and loads,
    and its checkpoint does not fit a model with an encoder per side."""
    torch.manual_seed(0)
    model = stif_core.build_model(preset, "full", pretrained=False).eval()
    torch.nn.init.normal_(model.mask_projection.weight)  # the paper's first-conv projection starts at zero
    s = model.cfg.crop_size
    image, mask = torch.rand(1, 3, s, s) * 255, torch.zeros(1, 1, s, s)
    with torch.no_grad():
        query = model.encode_query(image)  # (1, C, H, W)
        empty = model.encode_memory(image[:, None], mask[:, None])[:, 0]  # (1, C, H, W)
        mask[..., 60:100, 50:110] = 1
        boxed = model.encode_memory(image[:, None], mask[:, None])[:, 0]
        torch.testing.assert_close(model.remember(image, mask, query), boxed, rtol=1e-5, atol=1e-5)
    if preset == "paper":
        return
    assert float((boxed - empty).abs().amax()) > 1e-3  # the box marks the memory
    bias = model.mask_projection.bias[None, :, None, None]  # (1, C, 1, 1)
    torch.testing.assert_close(empty, query + bias, rtol=1e-5, atol=1e-5)
    save_weights(model, tmp_path / "m.safetensors", {"preset": "lite", "variant": "full"})
    again = load_model(tmp_path / "m.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(again.encode_memory(image[:, None], mask[:, None])[:, 0], boxed)
    separate = stif_core.build_model("lite", "full", pretrained=False, mask_injection="first_conv")
    with pytest.raises(ValueError, match="does not fit the model"):
        load_weights(separate, tmp_path / "m.safetensors")


def test_an_option_added_after_a_save_takes_the_behaviour_before_it(tmp_path):
    """A checkpoint records its whole config; a field it lacks was added later, so the model is built with
    ModelConfig's default for it (the old behaviour) even where a preset's default has moved on."""
    model = stif_core.build_model("lite", "full", pretrained=False, similarity="dot")  # as trained before
    path = tmp_path / "m.safetensors"
    save_weights(model, path, {"preset": "lite", "variant": "full"})
    meta = read_metadata(path)
    record = json.loads(meta["model"])
    del record["similarity"]  # as saved before the field existed
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=meta | {"model": json.dumps(record)})
    assert stif_core.config.PRESETS["lite"].similarity == "scaled_cosine"  # the preset has moved on since
    assert load_model(path).cfg.similarity == "dot"


def memory_change(model, seq, shift_px: int) -> float:
    """Relative change of F_m (a real frame's memory features) when the box mask moves by ``shift_px`` crop
    pixels, or is emptied (shift_px < 0)."""
    s = model.cfg.crop_size
    window = window_around(seq.boxes[0], s)
    image = torch.as_tensor(crop(seq.frame(0), window)).permute(2, 0, 1).float()[None, None]
    box = window.to_crop(xywh_to_xyxy(seq.boxes[0]))
    mask = torch.as_tensor(box_mask(box, s))[None, None, None]
    moved = torch.zeros_like(mask) if shift_px < 0 else torch.roll(mask, shift_px, dims=-1)
    with torch.no_grad():
        a, b = model.encode_memory(image, mask), model.encode_memory(image, moved)
    return float((a - b).norm() / a.norm())


def test_the_mask_changes_the_memory_features_of_a_real_frame():
    """The revision's mask enters at the neck with a trainable projection from the first step: moving or
    emptying the mask changes F_m by several percent on an untrained model already. The old first-conv
    projection was zero-initialised and sat under a frozen trunk: the model shipped before the revision kept it
    near zero (0.2-0.3%); the model shipped since keeps using the mask."""
    seq = load_sequences(["crossing"])[0]
    model = stif_core.build_model("lite", "full").eval()
    moved, empty = memory_change(model, seq, 24), memory_change(model, seq, -1)
    assert moved > 0.03 and empty > 0.03, (moved, empty)
    trained = load_model("stif_lite_full")  # trained with the neck projection: it kept using the mask
    moved, empty = memory_change(trained, seq, 24), memory_change(trained, seq, -1)
    assert moved > 0.03 and empty > 0.03, (moved, empty)


def test_a_checkpoint_of_an_earlier_design_is_one_line_and_a_saved_model_loads_as_it_was(tmp_path):
    """A checkpoint recording an option this design no longer has (a switch of an experiment that lost), or
    none at all, is refused in one line naming it; a model saved and loaded again is the same model."""
    shipped_path = checkpoint_path("stif_lite_full")
    meta = read_metadata(shipped_path)
    record = json.loads(meta["model"])
    state = load_file(shipped_path)
    path = tmp_path / "old.safetensors"
    save_file(state, str(path), metadata=meta | {"model": json.dumps(record | {"head_dilation": 1})})
    with pytest.raises(ValueError, match=r"records model options this design no longer has, \['head_dilation'\]"):
        load_model(path)
    with pytest.raises(ValueError, match=r"unknown model option\(s\) \['head_dilation'\]"):
        make_config("lite", "full", head_dilation=1)
    for extra, message in (({"stif": True}, r"\['stif'\] are the variant's switches"),
                           ({"crop_size": "161"}, "crop_size='161' is not valid")):  # a file names it: one line
        save_file(state, str(path), metadata=meta | {"model": json.dumps(record | extra)})
        with pytest.raises(ValueError, match=f"checkpoint {path}: its metadata builds no model: .*{message}"):
            load_model(path)
    bare = tmp_path / "bare.safetensors"
    save_file(state, str(bare), metadata={"preset": "lite", "variant": "full", "steps": "1700"})
    with pytest.raises(ValueError, match="records no model options"):
        load_model(bare)
    shipped = load_model("stif_lite_full")
    path = tmp_path / "again.safetensors"
    save_weights(shipped, path, {"preset": "lite", "variant": "full"})
    again = load_model(path)
    assert again.cfg == shipped.cfg
    for k, v in shipped.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
    fresh = stif_core.build_model("lite", "full")
    save_weights(fresh, path, {"preset": "lite", "variant": "full"})
    assert load_model(path).cfg == replace(fresh.cfg, pretrained=False)


def test_mask_share_is_the_foreground_fraction_around_each_cell_centre():
    """Cell j of the 17 x 17 lite grid is centred on crop pixel 16 + 8 j (the head's geometry); its share is the
    mask's mean over the 8 x 8 pixels [12 + 8 j, 20 + 8 j)."""
    mask = torch.zeros(1, 1, 161, 161)
    mask[..., 76:84, 76:80] = 1  # half of the centre cell's window (76..83 x 76..83)
    mask[..., 12:14, 12:20] = 1  # a quarter of cell (0, 0)'s window
    share = mask_share(mask, grid_offset(161, 17, 8), 8, 17)[0, 0]  # (17, 17)
    assert share[8, 8] == 0.5 and share[0, 0] == 0.25
    assert share.sum() == 0.75
