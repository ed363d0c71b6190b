"""Where a tracker's network runs. ``"torch"``: the model itself (any model; every internal map, which the
notebooks need). ``"onnx"``: ONNX Runtime sessions exported from the same model and weights, the fast path
for tracking on a CPU (head maps and temporal weights only; the trunk's depthwise convolutions run about 2x
faster there). Both give the same numbers to float rounding (``tests/tracking/test_engine.py``).
"""
from __future__ import annotations

import weakref
from contextlib import contextmanager, nullcontext

import torch
from torch import nn

from ..model import STIF, STIFOutput
from ..model.ort import Session

ENGINES = ("torch", "onnx")
# A model's exported sessions, shared by the trackers of one evaluation (one per sequence and start): exporting
# took 0.3-0.9 s a tracker, about a sixth of tracking a val sequence. Keyed by what the export depends on.
_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def export_key(model: STIF, threads: int) -> tuple:
    """What a model's exported graphs depend on besides its code: the thread count, every parameter's and
    buffer's in-place version (training or loading weights moves them) and the forward hooks (knock-outs)."""
    tensors = tuple(t._version for t in (*model.parameters(), *model.buffers()))
    hooked = tuple((*m._forward_hooks, *m._forward_pre_hooks) for m in model.modules())
    return threads, tensors, hooked


class TorchEngine:
    """The model's own methods: a query crop -> F_q; a crop, its mask and its F_q -> F_m; memory and F_q -> head
    maps. Which encoders a preset shares is the model's business (``STIF.remember``)."""

    def __init__(self, model: STIF):
        self.model = model

    def frame_scope(self):
        """The context a tracker runs one frame's work in (``init``, ``update``): nothing to set up here."""
        return nullcontext()

    def query(self, image: torch.Tensor) -> torch.Tensor:
        """image (1, 3, S, S) -> F_q (1, C, H, W)."""
        return self.model.encode_query(image)

    def memory(self, image: torch.Tensor, mask: torch.Tensor, query: torch.Tensor | None = None) -> torch.Tensor:
        """image (1, 3, S, S), mask (1, 1, S, S) and the crop's F_q ``query`` (computed here when None)
        -> F_m (1, C, H, W)."""
        return self.remember(image, mask, self.query(image) if query is None else query)

    def remember(self, image: torch.Tensor, mask: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        return self.model.remember(image, mask, query)

    def step(self, memory: torch.Tensor, query: torch.Tensor, internals: bool = False) -> STIFOutput:
        """memory (1, N, C, H, W), F_q (1, C, H, W) -> the head maps (every internal map with ``internals``)."""
        return self.model.step(memory, query, internals=internals)


class _Part(nn.Module):
    """One exported piece of the model (tensors in, tensors out)."""

    def __init__(self, model: STIF):
        super().__init__()
        self.model = model


class _Query(_Part):
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.encode_query(image)  # (1, C, H, W)


class _Memory(_Part):
    def forward(self, image: torch.Tensor, mask: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        return self.model.remember(image, mask, query)  # (1, C, H, W)


class _Step(_Part):
    def forward(self, memory: torch.Tensor, query: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model.step(memory, query)
        weights = out.temporal_weights if out.temporal_weights is not None else torch.zeros(0)
        return out.cls, out.ctr, out.reg, weights


class OnnxEngine(TorchEngine):
    """ONNX Runtime sessions of the model, exported once per tracker: query, memory, and a step per memory
    size N (the traced graph fixes N); the memory session keeps only the inputs the preset reads (the export
    drops the others). ``internals`` steps fall back to PyTorch."""

    def __init__(self, model: STIF, threads: int | None = None):
        super().__init__(model)
        if next(model.parameters()).device.type != "cpu":
            raise ValueError("engine 'onnx' runs on the CPU; on a GPU use engine 'torch'")
        self.threads = threads or torch.get_num_threads()
        key = export_key(model.eval(), self.threads)
        cached = _SESSIONS.get(model)
        if cached is not None and cached[0] == key:
            self.sessions = cached[1]
            return
        s = model.cfg.crop_size
        image, mask = torch.zeros(1, 3, s, s), torch.zeros(1, 1, s, s)
        self.sessions = {"query": Session(_Query(model), (image,), ["image"], self.threads)}
        self.sessions["memory"] = Session(_Memory(model), (image, mask, self.query(image)), ["image", "mask", "query"],
                                          self.threads)
        _SESSIONS[model] = (key, self.sessions)

    @contextmanager
    def frame_scope(self):
        """PyTorch's own ops of a frame (crop to tensor, stacking, the selection) on one thread: with more, its
        OpenMP threads spin-wait after each op on the cores ONNX Runtime's threads need next (docs/design.md,
        section 12: 0.83 of CSRT's speed with two threads, level with it with one)."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def query(self, image: torch.Tensor) -> torch.Tensor:
        return self.sessions["query"](image=image)[0]

    def remember(self, image: torch.Tensor, mask: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        return self.sessions["memory"](image=image, mask=mask, query=query)[0]

    def step(self, memory: torch.Tensor, query: torch.Tensor, internals: bool = False) -> STIFOutput:
        if internals:
            return super().step(memory, query, internals)
        n = memory.shape[1]
        name = f"step{n}"
        if name not in self.sessions:
            self.sessions[name] = Session(_Step(self.model), (memory, query), ["memory", "query"], self.threads)
        cls, ctr, reg, weights = self.sessions[name](memory=memory, query=query)
        return STIFOutput(cls, ctr, reg, temporal_weights=weights if weights.numel() else None)


def check_engine(name: str) -> str:
    """``name`` when it names an engine, else ``ValueError`` naming the valid ones."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; valid: {list(ENGINES)}")
    return name


def make_engine(name: str, model: STIF) -> TorchEngine:
    return OnnxEngine(model) if check_engine(name) == "onnx" else TorchEngine(model)
