"""A whole-network shape trace: one forward pass, every module down to a depth, with the shapes it took and
gave, in the order they ran (the notebooks' architecture walk-through and ``demo``)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn


@dataclass(frozen=True)
class TraceRow:
    name: str  # dotted module path, e.g. "fusion.memory_branch"
    kind: str  # the module's class
    inputs: str  # shapes, e.g. "(4, 3, 161, 161)"
    outputs: str
    parameters: int  # the module's own and its children's


def shapes(value) -> str:
    """Tensor shapes inside nested tuples, lists and dicts, as text; None and other values left out."""
    if isinstance(value, torch.Tensor):
        return str(tuple(value.shape))
    if isinstance(value, (tuple, list)):
        parts = [shapes(v) for v in value]
        return ", ".join(p for p in parts if p)
    if isinstance(value, dict):
        parts = [f"{k}: {shapes(v)}" for k, v in value.items() if shapes(v)]
        return "{" + ", ".join(parts) + "}" if parts else ""
    if hasattr(value, "__dataclass_fields__"):
        return shapes({k: getattr(value, k) for k in value.__dataclass_fields__})
    return ""


def shape_trace(model: nn.Module, *inputs, depth: int = 2, **kwargs) -> list[TraceRow]:
    """Run ``model(*inputs, **kwargs)`` once without gradients and record every module whose dotted name has
    at most ``depth`` parts, in the order they were entered (a parent before its children; a module called
    twice appears twice). The pretrained trunks are shown whole, not layer by layer."""
    rows, open_rows, handles = [], [], []
    for name, module in model.named_modules():
        inside_trunk = any(part == "trunk" for part in name.split(".")[:-1])
        if not name or name.count(".") >= depth or inside_trunk:
            continue

        def enter(m, args, name=name):
            open_rows.append(len(rows))
            rows.append(TraceRow(name, type(m).__name__, shapes(args), "", sum(p.numel() for p in m.parameters())))

        def leave(m, args, out):
            i = open_rows.pop()
            rows[i] = replace(rows[i], outputs=shapes(out))

        handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    try:
        with torch.no_grad():
            model(*inputs, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return rows


def format_trace(rows: list[TraceRow]) -> str:
    width = max(len(r.name) for r in rows) + 2
    lines = [f"{'module':<{width}}{'class':<22}{'params':>10}  input -> output"]
    for r in rows:
        lines.append(f"{r.name:<{width}}{r.kind:<22}{r.parameters:>10,}  {r.inputs} -> {r.outputs}")
    return "\n".join(lines)
