"""Saving and loading weights: safetensors for models, atomic writes, clear errors on a misfit."""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from . import build_model
from .config import ModelConfig
from .files import WriteError, atomic, parse_json, regular_file
from .model import STIF
from .paths import checkpoint_path


def atomic_save(obj, path: str | Path) -> None:
    """torch.save to a temporary file, then rename: a killed run never leaves a half-written file."""
    with atomic(path) as tmp, library_write(path):
        torch.save(obj, tmp)


@contextmanager
def library_write(path: str | Path):
    """A failed write inside safetensors or torch.save (a full disk or a file-size limit surfaces there as a
    ``SafetensorError`` or a ``RuntimeError`` about the file's position) as a ``WriteError`` naming ``path``."""
    try:
        yield
    except (SafetensorError, RuntimeError) as err:
        text = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise WriteError(f"cannot write {path}: {text} (a full disk or a file-size limit?); the earlier file, if "
                         "any, is kept") from None


def model_options(cfg: ModelConfig) -> dict:
    """Every config field but the variant's switches and the trunk's weight source: with the preset and the
    variant, what rebuilds this network whatever the presets' defaults become."""
    skip = {"ste", "sde_query", "stif", "pretrained", "backbone_weights"}
    return {k: v for k, v in asdict(cfg).items() if k not in skip}


def save_weights(model: STIF, path: str | Path, metadata: dict[str, str]) -> None:
    """The model's state dict as safetensors (atomically), with string metadata (preset, variant, steps, ...);
    the model's whole config is always recorded ("model")."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = metadata | {"model": json.dumps(model_options(model.cfg))}
    with atomic(path) as tmp, library_write(path):
        save_file(state, str(tmp), metadata=metadata)
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # safetensors makes its file private (0600); outputs get the umask's mode


def not_safetensors(path: Path, err: Exception) -> ValueError:
    return ValueError(f"checkpoint {path} is not a readable safetensors file ({err}); weights are loaded only from "
                      ".safetensors files (a torch.save pickle is never unpickled here: convert it with "
                      "safetensors.torch.save_file)")


def read_metadata(path: str | Path) -> dict[str, str]:
    try:
        with safe_open(str(regular_file(path, "checkpoint")), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise not_safetensors(Path(path), err) from None


def model_metadata(path: Path, meta: dict[str, str]) -> dict:
    """The model options of a checkpoint's metadata ``"model"`` (a JSON object; none: ``{}``); ``ValueError`` naming
    the file and the key when it is not one."""
    options = parse_json(meta.get("model", "{}"), f"checkpoint {path}: metadata \"model\"")
    if not isinstance(options, dict):
        raise ValueError(f"checkpoint {path}: metadata \"model\" must be a JSON object of model options, not "
                         f"{type(options).__name__}")
    return options


def load_weights(model: STIF, path: str | Path) -> None:
    """Load safetensors weights, naming every missing, unexpected or mis-shaped tensor when they don't fit."""
    path = regular_file(path, "checkpoint")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise not_safetensors(path, err) from None
    broken = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise ValueError(f"checkpoint {path} holds non-finite weights (NaN or infinity) in {len(broken)} tensor(s), "
                         f"e.g. {', '.join(broken[:3])}: a diverged or damaged training; it is never tracked with")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    shapes += [f"{k}: file {state[k].dtype} vs model {own[k].dtype}"  # load_state_dict would cast it silently
               for k in own if k in state and state[k].dtype != own[k].dtype]
    if missing or unexpected or shapes:
        meta = read_metadata(path)
        lines = [f"checkpoint {path} (preset {meta.get('preset', '?')}, variant {meta.get('variant', '?')}) "
                 f"does not fit the model (trunk {model.cfg.backbone}, crop {model.cfg.crop_size}, "
                 f"variant {model.cfg.variant}):"]
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape or dtype mismatch", shapes)):
            if items:
                lines.append(f"  {label} ({len(items)}): " + ", ".join(items[:8]) + (" ..." if len(items) > 8 else ""))
        raise ValueError("\n".join(lines))
    model.load_state_dict(state)


def load_model(path: str | Path, device: str = "cpu", preset: str | None = None, variant: str | None = None,
               **overrides) -> STIF:
    """Build the model a checkpoint was trained as (its metadata; ``preset``/``variant`` choose another, which
    must fit) and load it, in eval mode. ``path``: a file, or the name of a shipped model (``stif_lite_full``)."""
    path = checkpoint_path(path)
    meta = read_metadata(path)
    if "model" not in meta:
        raise ValueError(f"checkpoint {path} records no model options (metadata \"model\", written by save_weights)")
    options = model_metadata(path, meta)
    unknown = sorted(set(options) - {f.name for f in fields(ModelConfig)})
    if unknown:
        raise ValueError(f"checkpoint {path} records model options this design no longer has, {unknown}: it was "
                         "saved by an earlier design (docs/history.md); retrain it")
    stored = meta.get("preset", "lite")
    if preset is not None and preset != stored:
        raise ValueError(f"checkpoint {path} holds a {stored}-preset model; it cannot be loaded as preset {preset!r} "
                         "(leave preset out to build the model it was trained as)")
    preset = stored
    # an option added since the save takes ModelConfig's default (the behaviour before it existed)
    options = model_options(ModelConfig()) | options | {"pretrained": False} | overrides
    try:
        model = build_model(preset, variant or meta.get("variant", "full"), device=device, **options)
    except ValueError as err:  # a preset, variant or option the file records that this design refuses
        raise ValueError(f"checkpoint {path}: its metadata builds no model: {err}") from None
    load_weights(model, path)
    return model.eval()
