"""What every notebook does first: check its papermill parameters, seed everything, pick the device, open the
sequence and the trained model. A bad parameter stops the run here, with its name and the valid values."""
from __future__ import annotations

import inspect
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from IPython.display import Markdown, display

from . import resolve_device
from .checkpoint import load_model
from .data.sequences import REPO_ROOT, Sequence, default_data_root, list_otb_sequences, load_sequences
from .data.synthetic import synthetic_clip
from .model import STIF

FIGURES = REPO_ROOT / "figures"
DEFAULT_CHECKPOINT = "data/stif_lite_full.safetensors"


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


def repo_path(path: str | Path) -> Path:
    """A path as given when it exists, else relative to the repository root (notebooks run in notebooks/)."""
    p = Path(path)
    return p if p.is_absolute() or p.exists() else REPO_ROOT / p


def check_choice(name: str, value, valid) -> None:
    if value not in valid:
        raise ParameterError(f"parameter {name}={value!r} is not valid; valid values: {list(valid)}")


NB_THREADS = 1  # CPU threads of every notebook: float reductions depend on the thread count, and one
# thread keeps a notebook fast on a machine busy with other work (OpenMP spin-waits badly when oversubscribed)


def seed_everything(seed: int) -> None:
    """Fixed seeds, deterministic kernels and a fixed CPU thread count: the same numbers on every run and
    machine (nbval compares them)."""
    torch.set_num_threads(NB_THREADS)
    cv2.setNumThreads(NB_THREADS)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def setup(data_root: str = "", sequence: str = "jogging-1", checkpoint: str = DEFAULT_CHECKPOINT,
          device: str = "auto", seed: int = 0, fast: bool = True, max_frames: int | None = None) -> Session:
    """Check the parameters and open what the notebook needs. ``checkpoint=""`` opens no model.

    Without real data a synthetic clip stands in, so every notebook still runs on a fresh machine.
    ``max_frames`` cuts the sequence in fast mode.
    """
    check_choice("device", device, ("auto", "cpu", "cuda"))
    check_choice("fast", fast, (True, False))
    if not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"parameter seed={seed!r} is not valid; valid values: integers >= 0")
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
    if fast and max_frames is not None:
        seq.frames, seq.boxes = seq.frames[:max_frames], seq.boxes[:max_frames]
    model = None
    if checkpoint:
        path = repo_path(checkpoint)
        if not path.exists():
            raise ParameterError(f"parameter checkpoint={checkpoint!r}: no such file (looked for {path})")
        model = load_model(path, device=dev.type)
    seed_everything(seed)
    print(f"device {dev.type}, sequence {seq.name} ({len(seq)} frames), "
          f"model {model.cfg.variant if model else None}, fast={fast}")
    return Session(dev, seq, model, fast, seed, root)


def show_source(obj) -> None:
    """Display the source of a stif_core function or class (the package is the single source of the code)."""
    display(Markdown(f"```python\n{inspect.getsource(obj)}```"))


def save_figure(fig, name: str) -> None:
    """Save as ``figures/<name>.png`` (stable names; returns nothing, so no machine path lands in outputs)."""
    FIGURES.mkdir(exist_ok=True)
    fig.savefig(FIGURES / f"{name}.png", dpi=90, bbox_inches="tight")
