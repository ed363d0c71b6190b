"""ONNX Runtime sessions of parts of the model: exported once from the module and its current weights, run on
the CPU. The tracker's ``onnx`` engine and the trainer's frozen trunk use them: the trunk's depthwise
convolutions run 2-3x faster there than in PyTorch on a CPU, to float rounding."""
from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn


def onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("ONNX Runtime is needed here: pip install onnxruntime onnx (both are in requirements.lock)"
                          ) from None
    return onnxruntime


class Session:
    """One exported module: ``session(**inputs) -> list of tensors``. ``batch_inputs`` get a free first
    dimension; the others keep the example's shape."""

    def __init__(self, module: nn.Module, example: tuple[torch.Tensor, ...], names: list[str], threads: int,
                 batch_inputs: tuple[str, ...] = ()):
        ort = onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # no spin-waiting: each session has its own pool, and with them spinning on 2 cores the tracker ran at 21 FPS
        # against CSRT's 53 (docs/design.md, section 12)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        buffer = io.BytesIO()
        modes = {m: m.training for m in module.modules()}
        module.eval()  # exported as evaluated: batch-norm statistics, not the batch's
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(module, example, buffer, dynamo=False, opset_version=17, input_names=names,
                              dynamic_axes={n: {0: "batch"} for n in batch_inputs})
        for m, training in modes.items():  # every part back in its own mode (a frozen trunk's BN stays in eval)
            m.train(training)
        self.session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def __call__(self, **inputs: torch.Tensor) -> list[torch.Tensor]:
        """The outputs for the inputs the graph kept (an input the module ignores, such as the mask under the
        ``mask_empty`` knock-out, is dropped by the export)."""
        feeds = {k: np.ascontiguousarray(v.detach().cpu().numpy()) for k, v in inputs.items() if k in self.inputs}
        return [torch.from_numpy(o) for o in self.session.run(None, feeds)]


class _Trunk(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.trunk_features(images)  # (B, Ct, H', W')


class FrozenTrunk:
    """The model's shared trunk in ONNX Runtime, for as long as it stays frozen: crops (B, 3, S, S) ->
    features (B, Ct, H', W'), no gradient. The weights are those at construction."""

    def __init__(self, model: nn.Module, threads: int | None = None):
        s = model.cfg.crop_size
        self.session = Session(_Trunk(model), (torch.zeros(1, 3, s, s),), ["images"],
                               threads or torch.get_num_threads(), batch_inputs=("images",))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.session(images=images.float())[0]
