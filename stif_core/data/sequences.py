"""Tracking sequences: one in-memory description shared by every reader and consumer, readers for the OTB,
GOT-10k, LaSOT and TrackingNet layouts, the data root, and validation that names the file and line of any
bad input."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..files import check_name, read_json, read_text, regular_file
from ..options import plain_float
from ..paths import ENV_DATA_ROOT, default_data_root
from .digests import FrameDigests

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
LAYOUTS = ("auto", "otb", "got10k", "lasot", "trackingnet")
GOT10K_SPLITS = ("train", "val", "test")
TRACKINGNET_CHUNK = re.compile(r"(TRAIN|TEST)(_\d+)?")
SEPARATORS = re.compile(r"[,\s]+")  # OTB mixes commas, tabs and spaces
MAX_BOX_SCALE = 4  # a box this many times the frame is a broken annotation (the largest of the 61 sequences: 0.82)
LINE_BYTES = 256  # four numbers take under 100 bytes a line (under 200 in UTF-16): a file of more a frame is refused


class FrameError(ValueError):
    """A frame that is missing or cannot be decoded."""


class AnnotationError(ValueError):
    """Ground truth that does not fit its frames or holds an invalid box."""


def frame_file(path: Path) -> Path:
    """``path`` when it is a regular file (a FIFO would block the decoder); ``FrameError`` otherwise."""
    try:
        return regular_file(path, "frame")
    except FileNotFoundError:
        raise FrameError(f"frame {path} is missing") from None
    except ValueError as err:
        raise FrameError(str(err)) from None


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; grayscale and palette images become three channels, 16-bit grayscale is scaled to
    8 bits (PIL's own conversion would clip it to white); float images are refused."""
    try:
        with Image.open(frame_file(path)) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                gray = np.asarray(im, dtype=np.float64)  # (H, W) 0 .. 65535
                if gray.min() < 0 or gray.max() > 65535:
                    raise FrameError(f"frame {path}: {im.mode} values outside 0..65535; not a 16-bit image")
                gray = np.rint(gray * (255 / 65535)).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=2)
            if im.mode == "F":
                raise FrameError(f"frame {path} holds floating-point pixels; frames must be 8 or 16-bit images")
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise FrameError(f"frame {path} is missing") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:  # undecodable or truncated
        raise FrameError(f"frame {path} is corrupt or not an image ({err})") from None
    except Image.DecompressionBombError as err:
        raise too_large(path, err) from None


def too_large(path: Path, err: Exception) -> FrameError:
    """The error of a frame whose header announces more pixels than PIL decodes (``Image.MAX_IMAGE_PIXELS``)."""
    return FrameError(f"frame {path} is too large to decode ({err}); resize it")


@dataclass
class Sequence:
    """A video with one target.

    frames: image paths (read lazily) or an in-memory uint8 array (L, H, W, 3).
    boxes:  (L, 4) float64, x, y, w, h (top-left + size, pixels); NaN rows where the target has no box.
    absent: (L,) bool, True where the dataset marks the target absent / fully occluded / out of view; None where
            the dataset has no such labels (OTB, TrackingNet).
    """

    name: str
    frames: list[Path] | np.ndarray
    boxes: np.ndarray
    absent: np.ndarray | None = None
    attributes: dict = field(default_factory=dict)
    loader: Callable[[Path], np.ndarray] | None = None

    def __post_init__(self) -> None:
        self._first_size: tuple[int, int] | None = None  # read once, by first_size
        self.boxes = np.asarray(self.boxes, dtype=np.float64)
        if self.boxes.shape != (len(self), 4):
            raise ValueError(f"{self.name}: boxes of shape {self.boxes.shape} for {len(self)} frames")
        if self.absent is not None:
            self.absent = np.asarray(self.absent, dtype=bool)
            if self.absent.shape != (len(self),):
                raise ValueError(f"{self.name}: absent flags of shape {self.absent.shape} for {len(self)} frames")

    def __len__(self) -> int:
        return len(self.frames)

    def head(self, n: int | None) -> Sequence:
        """The first ``n`` frames (all when ``n`` is None), every per-frame field cut alike."""
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise ValueError(f"{self.name}: cannot keep {n} frames; keep at least 1")
        return replace(self, frames=self.frames[:n], boxes=self.boxes[:n],
                       absent=None if self.absent is None else self.absent[:n])

    def frame(self, i: int) -> np.ndarray:
        """Frame i as (H, W, 3) uint8 RGB; ``FrameError`` for a missing or corrupt frame, or one whose size differs
        from the first frame's (boxes and crops assume one size)."""
        if isinstance(self.frames, np.ndarray):
            return self.frames[i]
        try:
            image = (self.loader or read_image)(self.frames[i])
            size = image.shape[:2] if i == 0 else self.first_size()
        except FrameError as err:
            raise FrameError(f"{self.name}, frame index {i}: {err}") from None
        if image.shape[:2] != size:
            raise FrameError(f"{self.name}, frame index {i} ({self.frames[i]}): {image.shape[1]}x{image.shape[0]} "
                             f"pixels, but the first frame is {size[1]}x{size[0]}; every frame of a sequence must "
                             "have the first frame's size (re-export or resize the frames)")
        return image

    def first_size(self) -> tuple[int, int]:
        """(H, W) of frame 0: its header, or the decoded frame when a custom ``loader`` reads the frames."""
        if isinstance(self.frames, np.ndarray):
            return self.frames.shape[1:3]
        if self._first_size is None:
            self._first_size = (self.loader(self.frames[0]).shape[:2] if self.loader is not None
                                else image_size(self.frames[0])[::-1])
        return self._first_size

    def fingerprint(self, digests: Callable[[Path], str] | None = None) -> str:
        """A digest of the sequence's frames (``digests``: a ``data.digests.FrameDigests``, which caches them) and
        annotation: results stored for a sequence are reused only when this matches."""
        digest = hashlib.sha256(f"{len(self)}:".encode())
        if isinstance(self.frames, np.ndarray):
            digest.update(np.ascontiguousarray(self.frames).tobytes())
        else:
            digests = digests or FrameDigests()
            for path in self.frames:
                digest.update(f"{Path(path).name}:{digests(path)};".encode())
        for part in (self.boxes, self.absent, self.attributes.get("cover")):
            digest.update(b"|" + (b"-" if part is None else np.ascontiguousarray(part).tobytes()))
        return digest.hexdigest()[:16]


# ------------------------------------------------------------------ annotation files


def token_lines(path: Path) -> list[tuple[int, list[str]]]:
    """(1-based line number, tokens) per line; blank lines are allowed only at the end."""
    lines = read_text(path, "annotation file").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for n, line in enumerate(lines, 1):
        tokens = [t for t in SEPARATORS.split(line.strip()) if t]
        if not tokens:
            raise AnnotationError(f"{path}, line {n}: empty line")
        rows.append((n, tokens))
    return rows


def check_lines(path: Path, frames: int | None) -> None:
    """``AnnotationError`` for a file far larger than ``frames`` lines can be (``LINE_BYTES`` a line), before it is
    read: a file of millions of lines would take gigabytes to parse only to be refused for its length."""
    size = Path(path).stat().st_size if frames is not None and Path(path).is_file() else 0
    if size and size > LINE_BYTES * (frames + 1):
        raise AnnotationError(f"{path} is {size:,} bytes for {frames} frames: more than {LINE_BYTES} bytes a frame's "
                              "line, so not one line a frame (frames are missing, or it is another file)")


def read_boxes(path: Path, frames: int | None = None) -> np.ndarray:
    """(L, 4) float64 boxes, one "x, y, w, h" per line, separated by commas, tabs or spaces; ``frames``: the
    sequence's frame count (``check_lines``)."""
    check_lines(path, frames)
    rows = []
    for n, tokens in token_lines(path):
        try:
            values = [plain_float(t) for t in tokens]
        except ValueError:
            text = " ".join(tokens)  # quoted short: a file linked from elsewhere is not echoed
            raise AnnotationError(f"{path}, line {n}: cannot read {text[:40] + ('...' if len(text) > 40 else '')!r} "
                                  "as x, y, w, h") from None
        if len(values) != 4:
            raise AnnotationError(f"{path}, line {n}: expected 4 numbers x, y, w, h, found {len(values)}")
        rows.append(values)
    return np.array(rows, dtype=np.float64).reshape(-1, 4)  # (L, 4)


def read_labels(path: Path, n_frames: int) -> np.ndarray:
    """(L,) int64 per-frame labels, one per line or comma-separated (``absence.label``, ``out_of_view.txt``)."""
    check_lines(path, n_frames)
    values = []
    for n, tokens in token_lines(path):
        for t in tokens:
            if not t.isdigit():
                raise AnnotationError(f"{path}, line {n}: {t!r} is not a non-negative integer label")
            values.append(int(t))
    if len(values) != n_frames:
        raise AnnotationError(f"{path} has {len(values)} labels for {n_frames} frames")
    return np.array(values, dtype=np.int64)


def validate_boxes(boxes: np.ndarray, frames: list[Path], path: Path, absent: np.ndarray | None = None,
                   first_only: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(L, 4) boxes checked against the frames (just the first when ``first_only``), and the absent flags (L,) or
    None. The first box must be valid and overlap the frame; a later box wholly outside the frame marks its frame
    absent (as GOT-10k's absence label would); invalid boxes of absent frames become NaN."""
    n_frames = len(frames)
    if len(boxes) != n_frames and not (first_only and len(boxes) == 1):
        raise AnnotationError(f"{path} has {len(boxes)} boxes for {n_frames} frames, {frames[0].name} to "
                              f"{frames[-1].name}: " + ("frames before the first or after the last are missing"
                                                       if len(boxes) > n_frames else "boxes are missing"))
    w, h = image_size(frames[0])
    off = off_image(boxes, (w, h))  # (K,)
    if off[0]:
        raise AnnotationError(f"{path}, line 1: box {boxes[0].tolist()} lies outside the frame")
    if np.isfinite(boxes[0]).all() and 0 < min(boxes[0, 2], boxes[0, 3]) < 1:
        raise AnnotationError(f"{path}, line 1: box {boxes[0].tolist()} is under one pixel wide or high: no tracker "
                              "can start from it")
    if off.any():
        absent = (np.zeros(n_frames, bool) if absent is None else absent.copy())
        absent[:len(boxes)] |= off
    finite = np.isfinite(boxes).all(1)  # (K,)
    invalid = ~(finite & (boxes[:, 2] > 0) & (boxes[:, 3] > 0))  # (K,)
    huge = ~invalid & oversized(boxes, (w, h))  # (K,)
    excused = np.zeros(len(boxes), bool) if absent is None else absent[:len(boxes)].copy()  # (K,)
    excused[0] = False
    bad = np.flatnonzero((invalid | huge) & ~excused)
    if bad.size:
        i = bad[0]
        problem = ("is not finite" if not finite[i] else f"is over {MAX_BOX_SCALE} times the {w}x{h} frame" if huge[i]
                   else "has zero or negative size")
        raise AnnotationError(f"{path}, line {i + 1}: box {boxes[i].tolist()} {problem}")
    out = np.full((n_frames, 4), np.nan)  # (L, 4)
    out[:len(boxes)] = np.where((invalid | huge | off)[:, None], np.nan, boxes)
    return out, absent


def oversized(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(K,) True for boxes (K, 4) over ``MAX_BOX_SCALE`` times a frame of ``size`` (W, H) wide or high."""
    with np.errstate(invalid="ignore"):
        return (boxes[:, 2] > MAX_BOX_SCALE * size[0]) | (boxes[:, 3] > MAX_BOX_SCALE * size[1])


def check_box_scale(box: np.ndarray, size: tuple[int, int], what: str) -> np.ndarray:
    """``box`` (x, y, w, h) unless it is over ``MAX_BOX_SCALE`` times the frame of ``size`` (W, H), the rule ground
    truth is read by; ``AnnotationError`` naming ``what`` gave it otherwise."""
    box = np.asarray(box, dtype=np.float64)
    if oversized(box.reshape(1, 4), size)[0]:
        raise AnnotationError(f"{what} {box.tolist()} is over {MAX_BOX_SCALE} times the {size[0]}x{size[1]} frame "
                              "wide or high: give the target's box in the first frame's pixels")
    return box


def data_roots(path: str | Path) -> list[Path]:
    """The data roots ``path`` (a video or frames) may lie in: the default one, and the folder above each
    sequence folder (frames and ground truth) on its way; outputs are never written into them."""
    path = Path(path).resolve()
    found = [p.parent for p in (path, *path.parents) if p.is_dir() and otb_files(p) is not None]
    return [r for r in [default_data_root(), *found] if r is not None]


def image_size(path: Path) -> tuple[int, int]:
    """(W, H) of an image file, from its header."""
    try:
        with Image.open(frame_file(path)) as im:
            return im.size
    except FileNotFoundError:
        raise FrameError(f"frame {path} is missing") from None
    except (UnidentifiedImageError, OSError) as err:
        raise FrameError(f"frame {path} is corrupt or not an image ({err})") from None
    except Image.DecompressionBombError as err:
        raise too_large(path, err) from None


def off_image(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(K,) True for finite boxes of positive size that do not overlap a frame of ``size`` (W, H)."""
    w, h = size
    x, y, bw, bh = boxes.T  # (K,) each
    with np.errstate(invalid="ignore"):
        sized = np.isfinite(boxes).all(1) & (bw > 0) & (bh > 0)
        return sized & ((x >= w) | (y >= h) | (x + bw <= 0) | (y + bh <= 0))


# ------------------------------------------------------------------ frames


def natural_key(name: str) -> list[tuple[int, int | str]]:
    """Sort key reading digit runs as numbers: frame_2 before frame_10."""
    return [(0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", name) if t]


def frame_paths(folder: Path) -> list[Path]:
    """Image files of a folder in frame order. Numbered names sort numerically, and a gap in the numbering keeps its
    path, so that reading the missing frame raises ``FrameError`` naming it; other names sort naturally."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FrameError(f"frame folder {folder} is missing")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise FrameError(f"frame folder {folder} holds no images")
    numbered = [p for p in files if p.stem.isdigit()]
    if not numbered:
        return sorted(files, key=lambda p: natural_key(p.name))
    if len(numbered) < len(files):
        other = next(p for p in files if not p.stem.isdigit())
        raise FrameError(f"frame folder {folder} mixes numbered frames ({numbered[0].name}) with other images "
                         f"({other.name}): their order is unknown; move the others away")
    by_number = {}
    for p in sorted(numbered):
        twin = by_number.setdefault(int(p.stem), p)
        if twin is not p:
            raise FrameError(f"frame folder {folder} has two frames numbered {int(p.stem)}: {twin.name} and {p.name}")
    lo, hi = min(by_number), max(by_number)
    if hi - lo + 1 > 2 * len(by_number):
        first = next(k for k in range(lo, hi + 1) if k not in by_number)
        raise FrameError(f"frame folder {folder}: {len(by_number)} frames numbered from {lo} to {hi}, most numbers "
                         f"missing (the first: {first})")
    width, suffix = len(by_number[lo].stem), by_number[lo].suffix  # width 8 for 00000001.jpg, 1 for 0.jpg
    return [by_number.get(k, folder / f"{k:0{width}d}{suffix}") for k in range(lo, hi + 1)]


# ------------------------------------------------------------------ OTB


def otb_files(seq_dir: Path) -> tuple[Path, Path] | None:
    """(ground-truth file, frame folder) of our layout or OTB's own, None when neither."""
    if (seq_dir / "groundtruth.txt").exists():
        return seq_dir / "groundtruth.txt", seq_dir
    if (seq_dir / "groundtruth_rect.txt").exists():
        return seq_dir / "groundtruth_rect.txt", seq_dir / "img"
    return None


def read_otb_sequence(seq_dir: Path) -> Sequence:
    """Our layout (frames + ``groundtruth.txt``) or OTB's own (``img/`` + ``groundtruth_rect.txt``)."""
    seq_dir = Path(seq_dir)
    found = otb_files(seq_dir)
    if found is None:
        raise FileNotFoundError(f"{seq_dir} holds no groundtruth.txt nor groundtruth_rect.txt")
    gt_path, frame_dir = found
    frames = frame_paths(frame_dir)
    boxes, absent = validate_boxes(read_boxes(gt_path, len(frames)), frames, gt_path)
    return Sequence(seq_dir.name, frames, boxes, absent)


def list_otb_sequences(root: Path) -> list[str]:
    """Names of the sequence folders of ``root`` in either OTB layout."""
    return sorted(p.name for p in Path(root).iterdir() if p.is_dir() and otb_files(p))


# ------------------------------------------------------------------ GOT-10k, LaSOT, TrackingNet


def read_got10k_sequence(seq_dir: Path, first_only: bool = False) -> Sequence:
    """GOT-10k: frames, ``groundtruth.txt`` (just the first box when ``first_only``, the test split),
    ``absence.label`` and ``cover.label`` (visible ratio 0-8) where present."""
    seq_dir = Path(seq_dir)
    frames = frame_paths(seq_dir)
    absent = None
    if (seq_dir / "absence.label").exists():
        absent = read_labels(seq_dir / "absence.label", len(frames)) > 0
    attributes = {"dataset": "got10k"}
    if (seq_dir / "cover.label").exists():
        attributes["cover"] = read_labels(seq_dir / "cover.label", len(frames))
        if attributes["cover"].max() > 8:
            raise AnnotationError(f"{seq_dir / 'cover.label'}: label {attributes['cover'].max()} is not a visible "
                                  "ratio 0-8")
    gt_path = seq_dir / "groundtruth.txt"
    boxes, absent = validate_boxes(read_boxes(gt_path, len(frames)), frames, gt_path, absent, first_only)
    return Sequence(seq_dir.name, frames, boxes, absent, attributes)


def read_lasot_sequence(seq_dir: Path) -> Sequence:
    """LaSOT: ``img/``, ``groundtruth.txt``, ``full_occlusion.txt`` and ``out_of_view.txt`` (one comma line),
    ``nlp.txt``; fully occluded or out-of-view frames are absent."""
    seq_dir = Path(seq_dir)
    frames = frame_paths(seq_dir / "img")
    absent = np.zeros(len(frames), bool)
    for flags in ("full_occlusion.txt", "out_of_view.txt"):
        if (seq_dir / flags).exists():
            absent |= read_labels(seq_dir / flags, len(frames)) > 0
    attributes = {"dataset": "lasot", "class": seq_dir.parent.name}
    if (seq_dir / "nlp.txt").exists():
        attributes["nlp"] = read_text(seq_dir / "nlp.txt", "LaSOT description").strip()
    gt_path = seq_dir / "groundtruth.txt"
    boxes, absent = validate_boxes(read_boxes(gt_path, len(frames)), frames, gt_path, absent)
    return Sequence(seq_dir.name, frames, boxes, absent, attributes)


def read_trackingnet_sequence(chunk_dir: Path, video: str, first_only: bool = False) -> Sequence:
    """TrackingNet: ``<chunk>/frames/<video>/<k>.jpg`` (0-based, unpadded) and ``<chunk>/anno/<video>.txt``
    (just the first box when ``first_only``, the TEST chunk)."""
    chunk_dir = Path(chunk_dir)
    frames = frame_paths(chunk_dir / "frames" / video)
    gt_path = chunk_dir / "anno" / f"{video}.txt"
    boxes, absent = validate_boxes(read_boxes(gt_path, len(frames)), frames, gt_path, first_only=first_only)
    return Sequence(video, frames, boxes, absent, attributes={"dataset": "trackingnet", "chunk": chunk_dir.name})


def subfolders(folder: Path) -> list[Path]:
    """Sorted child folders."""
    return sorted(p for p in Path(folder).iterdir() if p.is_dir())


def got10k_sequences(root: Path, split: str | None) -> list[Sequence]:
    """The sequences of one GOT-10k split (all present splits when None), in ``list.txt`` order if present."""
    if split is not None and split not in GOT10K_SPLITS:
        raise ValueError(f"unknown GOT-10k split {split!r}; valid: {list(GOT10K_SPLITS)}")
    out = []
    for name in [split] if split else [s for s in GOT10K_SPLITS if (root / s).is_dir()]:
        folder = root / name
        if not folder.is_dir():
            raise ValueError(f"{root} is not a GOT-10k folder: it has no {name}/ split folder")
        listed = folder / "list.txt"
        seqs = ([folder / check_name(s, f"{listed}: entry") for s in read_text(listed, "GOT-10k sequence list").split()]
                if listed.exists()
                else [p for p in subfolders(folder) if (p / "groundtruth.txt").is_file()])
        out += [read_got10k_sequence(p, first_only=name == "test") for p in seqs]
    return out


def lasot_sequences(root: Path, split: str | None) -> list[Sequence]:
    """LaSOT sequences of one class (``split``) or of all classes."""
    classes = subfolders(root)
    if split:
        if not (root / split).is_dir():
            raise ValueError(f"unknown LaSOT class {split!r} in {root}; available: {[c.name for c in classes]}")
        classes = [root / split]
    return [read_lasot_sequence(p) for c in classes for p in subfolders(c) if (p / "groundtruth.txt").is_file()]


def trackingnet_sequences(root: Path, split: str | None) -> list[Sequence]:
    """TrackingNet sequences of the chunks named by ``split``: "train", "test", one chunk ("TRAIN_3"), or all."""
    chunks = [c for c in subfolders(root) if TRACKINGNET_CHUNK.fullmatch(c.name)]
    if split:
        chunks = [c for c in chunks if c.name == split or c.name.split("_")[0] == split.upper()]
    if not chunks:
        raise ValueError(f"no TrackingNet chunk {split!r} in {root}" if split else
                         f"{root} holds no TrackingNet chunk folders (TRAIN_0, ..., TEST)")
    return [read_trackingnet_sequence(c, a.stem, first_only=c.name.startswith("TEST"))
            for c in chunks for a in sorted((c / "anno").glob("*.txt"))]


def detect_layout(root: Path) -> str:
    """The layout of ``root`` (got10k, trackingnet, otb or lasot), from its folder structure."""
    root = Path(root)
    if any((p / "groundtruth.txt").is_file() for s in GOT10K_SPLITS if (root / s).is_dir()
           for p in subfolders(root / s)):
        return "got10k"
    if any(TRACKINGNET_CHUNK.fullmatch(c.name) and (c / "anno").is_dir() for c in subfolders(root)):
        return "trackingnet"
    if list_otb_sequences(root):
        return "otb"
    if any((p / "img").is_dir() and (p / "groundtruth.txt").is_file() for c in subfolders(root)
           for p in subfolders(c)):
        return "lasot"
    raise ValueError(f"{root}: no known dataset layout ({', '.join(LAYOUTS[1:])})")


def open_dataset(root: str | Path, layout: str = "auto", split: str | None = None) -> list[Sequence]:
    """The sequences of a dataset folder, frames read lazily, of one ``split`` (``eval --split``) when given."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid: {list(LAYOUTS)}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    layout = detect_layout(root) if layout == "auto" else layout
    if layout == "otb":
        return load_sequences(load_split(split, root) if split else None, root)
    readers = {"got10k": got10k_sequences, "lasot": lasot_sequences, "trackingnet": trackingnet_sequences}
    sequences = readers[layout](root, split)
    if not sequences:
        raise ValueError(f"{root} holds no {layout} sequences" + (f" in {split!r}" if split else ""))
    names = [q.name for q in sequences]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:  # results are stored by name: two would overwrite each other
        raise ValueError(f"{root}: two {layout} sequences are named {twice!r}; results are stored by sequence name")
    return sequences


# ------------------------------------------------------------------ data root


def resolve_root(data_root: str | Path | None) -> Path:
    """``data_root`` or the default one; ``FileNotFoundError`` when it is not a folder."""
    root = Path(data_root) if data_root else default_data_root()
    if root is None or not root.is_dir():
        raise FileNotFoundError(f"no sequences folder at {root or '(none found)'}; set ${ENV_DATA_ROOT} "
                                "or pass a data root")
    return root


FOLD = re.compile(r"(?P<split>[^:]+):(?P<rest>except-)?fold-(?P<i>0|[1-9][0-9]{0,5})-of-(?P<k>0|[1-9][0-9]{0,5})")


class SplitNames(list):
    """A split's sequence names that remember where they were read (``source``), for an error naming the file."""

    def __init__(self, names: list[str], source: str) -> None:
        super().__init__(names)
        self.source = source


def load_split(split: str, data_root: str | Path | None = None) -> SplitNames:
    """Sequence names of a split from ``splits.json`` beside the sequences folder. ``train:fold-I-of-K`` is fold I
    of the split's names sorted and dealt into K folds (every K-th from the I-th), ``train:except-fold-I-of-K`` the
    other folds: cross-validation by sequence."""
    fold = FOLD.fullmatch(split)
    if fold:
        whole, i, k = load_split(fold["split"], data_root), int(fold["i"]), int(fold["k"])
        names = sorted(whole)
        if not (2 <= k <= len(names) and 0 <= i < k):
            need = (f"K from 2 to {len(names)} (the split's sequences) and I from 0 to K - 1" if len(names) >= 2
                    else f"a split of 2 or more sequences ({fold['split']!r} holds {len(names)})")
            raise ValueError(f"split {split!r}: a fold I of K needs {need}")
        return SplitNames([n for j, n in enumerate(names) if (j % k == i) != bool(fold["rest"])], whole.source)
    path = resolve_root(data_root).parent / "splits.json"
    splits = read_json(path, "splits file")
    if not isinstance(splits, dict):
        raise ValueError(f"{path} must hold an object of split name -> list of sequence names")
    if any(":" in name for name in splits):
        raise ValueError(f"{path}: split names hold no ':' (it names a cross-validation fold, train:fold-0-of-4): "
                         f"{[n for n in splits if ':' in n][:3]}")
    if split not in splits:
        raise ValueError(f"unknown split {split!r}; valid: {sorted(splits)}, or a fold of one (train:fold-0-of-4)")
    names = splits[split]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path}: split {split!r} must be a list of sequence names, not {names!r}")
    if not names:
        raise ValueError(f"{path}: split {split!r} lists no sequences")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{path}: split {split!r} lists {twice[:3]} more than once; each sequence once")
    for other, listed in splits.items():  # a sequence in two splits would be trained on and reported on
        listed = listed if other != split and isinstance(listed, list) else []
        shared = sorted(set(names) & {n for n in listed if isinstance(n, str)})
        if shared:
            raise ValueError(f"{path}: splits {split!r} and {other!r} share {len(shared)} sequence(s), e.g. "
                             f"{shared[:3]}; each sequence belongs to one split")
    return SplitNames(names, f"split {split!r} of {path}")


def load_sequences(names: list[str] | None = None, data_root: str | Path | None = None) -> list[Sequence]:
    """Sequences of the data root in the OTB layout (all of them when ``names`` is None)."""
    root = resolve_root(data_root)
    available = list_otb_sequences(root)
    listed = f" (listed by {names.source})" if isinstance(names, SplitNames) else ""
    names = available if names is None else list(names)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown sequence(s) {unknown} in {root}{listed}; available: {available} (a sequence is a "
                         "folder holding its frames and groundtruth.txt, or OTB's img/ and groundtruth_rect.txt; "
                         "eval reads GOT-10k's, LaSOT's and TrackingNet's layouts with --layout auto)")
    return [read_otb_sequence(root / n) for n in names]
