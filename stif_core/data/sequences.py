"""Tracking sequences: one in-memory description shared by every reader and consumer, the data root, and
validation that names the file and line of any bad input."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

ENV_DATA_ROOT = "STIF_DATA_ROOT"
REPO_ROOT = Path(__file__).resolve().parents[2]


class FrameError(ValueError):
    """A frame that is missing or cannot be decoded."""


class AnnotationError(ValueError):
    """Ground truth that does not fit its frames or holds an invalid box."""


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; grayscale and palette images become three channels."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise FrameError(f"frame {path} is missing") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise FrameError(f"frame {path} is corrupt or not an image ({err})") from None


@dataclass
class Sequence:
    """A video with one target.

    frames: image paths (read lazily) or an in-memory uint8 array (L, H, W, 3).
    boxes:  (L, 4) float64, x, y, w, h (top-left + size, pixels); NaN rows where the target has no box.
    absent: (L,) bool, True where the dataset marks the target absent / fully occluded / out of view.
    """

    name: str
    frames: list[Path] | np.ndarray
    boxes: np.ndarray
    absent: np.ndarray | None = None
    attributes: dict = field(default_factory=dict)
    loader: Callable[[Path], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, i: int) -> np.ndarray:
        """Frame i as (H, W, 3) uint8 RGB; ``FrameError`` names the file of a missing or corrupt frame."""
        if isinstance(self.frames, np.ndarray):
            return self.frames[i]
        return (self.loader or read_image)(self.frames[i])


# ------------------------------------------------------------------ ground truth


def read_boxes(path: Path) -> np.ndarray:
    """(L, 4) float64 boxes from a text file with comma, tab or whitespace separators."""
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise AnnotationError(f"{path}, line {n}: cannot read {line.strip()!r} as x, y, w, h") from None
        if len(values) != 4:
            raise AnnotationError(f"{path}, line {n}: expected 4 numbers x, y, w, h, found {len(values)}")
        rows.append(values)
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def check_boxes(boxes: np.ndarray, n_frames: int, path: Path, absent: np.ndarray | None = None,
                first_only: bool = False) -> None:
    """Line count equal to the frame count; every box finite with positive size unless marked absent."""
    if len(boxes) != n_frames and not (first_only and len(boxes) >= 1):
        raise AnnotationError(f"{path} has {len(boxes)} boxes for {n_frames} frames")
    rows = boxes[:1] if first_only else boxes
    for i, (x, y, w, h) in enumerate(rows):
        if absent is not None and i > 0 and absent[i]:
            continue
        if not np.isfinite([x, y, w, h]).all():
            raise AnnotationError(f"{path}, line {i + 1}: box {[x, y, w, h]} is not finite")
        if w <= 0 or h <= 0:
            raise AnnotationError(f"{path}, line {i + 1}: box {[x, y, w, h]} has zero or negative size")


# ------------------------------------------------------------------ the OTB layout


def frame_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def read_otb_sequence(seq_dir: Path) -> Sequence:
    """Our layout (frames + ``groundtruth.txt``) or OTB's own (``img/`` + ``groundtruth_rect.txt``)."""
    seq_dir = Path(seq_dir)
    if (seq_dir / "groundtruth.txt").exists():
        gt_path, frames = seq_dir / "groundtruth.txt", frame_paths(seq_dir)
    elif (seq_dir / "groundtruth_rect.txt").exists():
        gt_path, frames = seq_dir / "groundtruth_rect.txt", frame_paths(seq_dir / "img")
    else:
        raise FileNotFoundError(f"{seq_dir} holds no groundtruth.txt nor groundtruth_rect.txt")
    boxes = read_boxes(gt_path)
    check_boxes(boxes, len(frames), gt_path)
    return Sequence(seq_dir.name, frames, boxes)


def list_otb_sequences(root: Path) -> list[str]:
    root = Path(root)
    return sorted(p.name for p in root.iterdir()
                  if (p / "groundtruth.txt").exists() or (p / "groundtruth_rect.txt").exists())


# ------------------------------------------------------------------ GOT-10k, LaSOT, TrackingNet


def read_flags(path: Path, n_frames: int) -> np.ndarray:
    """0/1 flags, one per frame, separated by newlines or commas (``absence.label``, ``full_occlusion.txt``)."""
    values = [v for v in re.split(r"[,\s]+", Path(path).read_text().strip()) if v]
    if len(values) != n_frames:
        raise AnnotationError(f"{path} has {len(values)} flags for {n_frames} frames")
    return np.array([int(float(v)) for v in values]) > 0


def read_got10k_sequence(seq_dir: Path) -> Sequence:
    """GOT-10k: frames, ``groundtruth.txt`` (only the first box in the test split), ``absence.label`` and
    ``cover.label`` (visible ratio 0-8) where present; absent frames may have empty boxes."""
    seq_dir = Path(seq_dir)
    frames = frame_paths(seq_dir)
    gt_path = seq_dir / "groundtruth.txt"
    boxes = read_boxes(gt_path)
    first_only = len(boxes) == 1 and len(frames) > 1
    absent = read_flags(seq_dir / "absence.label", len(frames)) if (seq_dir / "absence.label").exists() else None
    check_boxes(boxes, len(frames), gt_path, absent, first_only)
    attributes = {}
    if (seq_dir / "cover.label").exists():
        attributes["cover"] = np.loadtxt(seq_dir / "cover.label", ndmin=1)
    if first_only:
        boxes = np.vstack([boxes, np.full((len(frames) - 1, 4), np.nan)])
    elif absent is not None:
        boxes[absent] = np.nan
    return Sequence(seq_dir.name, frames, boxes, absent, attributes)


def read_lasot_sequence(seq_dir: Path) -> Sequence:
    """LaSOT: ``img/``, ``groundtruth.txt``, ``full_occlusion.txt`` and ``out_of_view.txt`` (one comma line)."""
    seq_dir = Path(seq_dir)
    frames = frame_paths(seq_dir / "img")
    gt_path = seq_dir / "groundtruth.txt"
    boxes = read_boxes(gt_path)
    absent = np.zeros(len(frames), bool)
    for flag in ("full_occlusion.txt", "out_of_view.txt"):
        if (seq_dir / flag).exists():
            absent |= read_flags(seq_dir / flag, len(frames))
    check_boxes(boxes, len(frames), gt_path, absent)
    attributes = {"class": seq_dir.parent.name}
    if (seq_dir / "nlp.txt").exists():
        attributes["nlp"] = (seq_dir / "nlp.txt").read_text().strip()
    boxes[absent & ~((boxes[:, 2] > 0) & (boxes[:, 3] > 0))] = np.nan
    return Sequence(seq_dir.name, frames, boxes, absent, attributes)


def read_trackingnet_sequence(chunk_dir: Path, video: str) -> Sequence:
    """TrackingNet: ``<chunk>/frames/<video>/<k>.jpg`` (0-based, unpadded) and ``<chunk>/anno/<video>.txt``."""
    folder = Path(chunk_dir) / "frames" / video
    frames = sorted(frame_paths(folder), key=lambda p: int(p.stem))
    gt_path = Path(chunk_dir) / "anno" / f"{video}.txt"
    boxes = read_boxes(gt_path)
    first_only = len(boxes) == 1 and len(frames) > 1  # the test chunks hold only the first box
    check_boxes(boxes, len(frames), gt_path, first_only=first_only)
    if first_only:
        boxes = np.vstack([boxes, np.full((len(frames) - 1, 4), np.nan)])
    return Sequence(video, frames, boxes, attributes={"chunk": Path(chunk_dir).name})


def detect_layout(root: Path) -> str:
    root = Path(root)
    if any((root / s).is_dir() for s in ("train", "val", "test")):
        return "got10k"
    if any(p.name.startswith(("TRAIN_", "TEST")) for p in root.iterdir()):
        return "trackingnet"
    if list_otb_sequences(root):
        return "otb"
    if any((p / "img").is_dir() for c in root.iterdir() if c.is_dir() for p in c.iterdir() if p.is_dir()):
        return "lasot"
    raise ValueError(f"{root}: no known dataset layout (otb, got10k, lasot, trackingnet)")


LAYOUTS = ("auto", "otb", "got10k", "lasot", "trackingnet")


def open_dataset(root: str | Path, layout: str = "auto", split: str | None = None) -> list[Sequence]:
    """Every sequence of a dataset folder; ``split`` picks GOT-10k's train/val/test or TrackingNet chunks."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid: {list(LAYOUTS)}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    layout = detect_layout(root) if layout == "auto" else layout
    if layout == "otb":
        return [read_otb_sequence(root / n) for n in list_otb_sequences(root)]
    if layout == "got10k":
        folder = root / (split or "train")
        listed = folder / "list.txt"
        names = listed.read_text().split() if listed.exists() else sorted(
            p.name for p in folder.iterdir() if (p / "groundtruth.txt").exists())
        return [read_got10k_sequence(folder / n) for n in names]
    if layout == "lasot":
        return [read_lasot_sequence(p) for c in sorted(root.iterdir()) if c.is_dir()
                for p in sorted(c.iterdir()) if (p / "groundtruth.txt").exists()]
    chunks = sorted(p for p in root.iterdir() if p.is_dir() and (split is None or p.name.startswith(split)))
    return [read_trackingnet_sequence(c, a.stem) for c in chunks for a in sorted((c / "anno").glob("*.txt"))]


# ------------------------------------------------------------------ data root


def default_data_root() -> Path | None:
    """``$STIF_DATA_ROOT``, else ``../shared/data/sequences`` beside the repository or the working folder."""
    if os.environ.get(ENV_DATA_ROOT):
        return Path(os.environ[ENV_DATA_ROOT])
    for base in (REPO_ROOT, Path.cwd(), Path.cwd().parent):
        candidate = (base / ".." / "shared" / "data" / "sequences").resolve()
        if candidate.is_dir():
            return candidate
    return None


def resolve_root(data_root: str | Path | None) -> Path:
    root = Path(data_root) if data_root else default_data_root()
    if root is None or not root.is_dir():
        raise FileNotFoundError(f"no sequences folder at {root or '(none found)'}; set ${ENV_DATA_ROOT} "
                                "or pass a data root")
    return root


def load_split(split: str, data_root: str | Path | None = None) -> list[str]:
    """Sequence names of a split from ``splits.json`` beside the sequences folder."""
    path = resolve_root(data_root).parent / "splits.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    splits = json.loads(path.read_text())
    if split not in splits:
        raise ValueError(f"unknown split {split!r}; valid: {sorted(splits)}")
    return list(splits[split])


def load_sequences(names: list[str] | None = None, data_root: str | Path | None = None) -> list[Sequence]:
    """Sequences of the data root in the OTB layout (all of them when ``names`` is None)."""
    root = resolve_root(data_root)
    available = list_otb_sequences(root)
    names = available if names is None else list(names)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown sequence(s) {unknown} in {root}; available: {available}")
    return [read_otb_sequence(root / n) for n in names]
