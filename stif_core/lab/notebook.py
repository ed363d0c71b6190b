"""What every notebook does first: check its papermill parameters, seed everything, pick the device, open the
sequence and the trained model. A bad parameter stops the run here, with its name and the valid values.

``check`` holds a notebook's key numbers to stored references within tolerances measured across CPUs
(``stif_core.lab.references``), so that nbval compares numbers, not the last digits of their printed text."""
from __future__ import annotations

import inspect
import json
import math
import os
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import torch
from IPython.display import Markdown, display

from .. import resolve_device
from ..checkpoint import load_model
from ..data.sequences import Sequence, list_otb_sequences, load_sequences
from ..data.synthetic import synthetic_clip
from ..device import DEVICES
from ..files import open_append
from ..model import STIF
from ..paths import default_data_root, output_dir
from .viz import save_png

DEFAULT_CHECKPOINT = "stif_lite_full"
FAST_FRAMES = 100  # every sequence is cut to this many frames in fast mode, in every notebook
ENV_CHECK = "STIF_NB_CHECK"  # path of the stored references: every ``check`` is held to them (nbval)
ENV_RECORD = "STIF_NB_RECORD"  # path of a JSONL file: every ``check`` appends its value (the spread study)
ENV_THREADS = "STIF_THREADS"  # CPU threads of a notebook (default 1)


class ParameterError(ValueError):
    """A notebook parameter with a bad value."""


@dataclass
class Session:
    device: torch.device
    sequence: Sequence
    model: STIF | None
    fast: bool
    seed: int
    data_root: Path | None


def open_checkpoint(name: str, value: str, device: torch.device) -> STIF:
    """The model of a checkpoint parameter (a path, or a shipped model's name); ``ParameterError`` otherwise."""
    try:
        return load_model(value, device=device.type)
    except (FileNotFoundError, ValueError) as err:
        raise ParameterError(f"parameter {name}={value!r}: {err}") from None


def check_int(name: str, value, low: int, high: int | None = None, note: str = "") -> None:
    """An integer parameter in [low, high] (booleans refused)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        valid = f"integers {low} to {high}" if high is not None else f"integers >= {low}"
        raise ParameterError(f"parameter {name}={value!r} is not valid; valid values: {valid}{note}")


def check_choice(name: str, value, valid) -> None:
    if value not in valid:
        raise ParameterError(f"parameter {name}={value!r} is not valid; valid values: {list(valid)}")


def seed_everything(seed: int) -> None:
    """Fixed seeds, deterministic kernels and a fixed CPU thread count (``$STIF_THREADS``, default 1: OpenMP
    spin-waits badly on a machine busy with other work)."""
    threads = int(os.environ.get(ENV_THREADS, "1"))
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def setup(data_root: str = "", sequence: str = "jogging-1", checkpoint: str = DEFAULT_CHECKPOINT,
          device: str = "auto", seed: int = 0, fast: bool = True) -> Session:
    """Check the parameters and open what the notebook needs (``checkpoint=""``: no model); without real data a
    synthetic clip stands in, so every notebook still runs on a fresh machine."""
    check_choice("device", device, DEVICES)
    check_choice("fast", fast, (True, False))
    check_int("seed", seed, 0)
    try:
        dev = resolve_device(device)
    except ValueError as err:
        raise ParameterError(f"parameter device={device!r}: {err}") from None
    root = Path(data_root) if data_root else default_data_root()
    if data_root and not Path(data_root).is_dir():
        raise ParameterError(f"parameter data_root={data_root!r} is not a folder")
    if root is not None and root.is_dir():
        check_choice("sequence", sequence, list_otb_sequences(root))
        seq = load_sequences([sequence], root)[0]
    else:
        print("no real sequences found (set data_root or $STIF_DATA_ROOT): using a synthetic clip")
        seq, root = synthetic_clip(120, seed=seed, name="synthetic"), None
    seq = seq.head(FAST_FRAMES if fast else None)
    model = open_checkpoint("checkpoint", checkpoint, dev) if checkpoint else None
    seed_everything(seed)
    print(f"device {dev.type}, sequence {seq.name} ({len(seq)} frames), "
          f"model {model.cfg.variant if model else None}, fast={fast}")
    return Session(dev, seq, model, fast, seed, root)


def show_source(obj) -> None:
    """Display the source of a stif_core function or class (the package is the single source of the code)."""
    display(Markdown(f"```python\n{inspect.getsource(obj)}```"))


def save_figure(fig, name: str) -> None:
    """Save as ``<project>/figures/<name>.png`` (returns nothing, so no machine path lands in outputs)."""
    save_png(fig, output_dir("figures") / f"{name}.png")


class CheckError(AssertionError):
    """A key number outside its stored reference."""


@cache
def references(path: str) -> dict:
    return json.loads(Path(path).read_text())["values"]


def check(key: str, value: float) -> None:
    """A notebook's key number. With ``$STIF_NB_CHECK`` set (nbval, the tests) it must lie within the tolerance
    stored for ``key`` (``python -m stif_core references``; an infinite one takes anything); with
    ``$STIF_NB_RECORD`` set it is appended to that file."""
    value = float(value)
    if os.environ.get(ENV_RECORD):
        with open_append(os.environ[ENV_RECORD]) as f:
            f.write(json.dumps({"key": key, "value": value}) + "\n")
    if os.environ.get(ENV_CHECK):
        ref = references(os.environ[ENV_CHECK]).get(key)
        if ref is None:
            raise CheckError(f"no stored reference for {key!r}: run `python -m stif_core references`")
        same_nan = math.isnan(value) and math.isnan(ref["value"])
        if not (same_nan or math.isinf(ref["tol"]) or abs(value - ref["value"]) <= ref["tol"]):
            raise CheckError(f"{key} = {value:.6g}, outside the stored {ref['value']:.6g} +- {ref['tol']:.3g} "
                             f"(the spread across CPUs was {ref['spread']:.3g})")
