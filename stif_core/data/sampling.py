"""Training samples (STMTrack style): an initial frame, T reference frames before the query and the query, in
time order, cropped with scale jitter and centre shift, mean-colour padding, foreground masks on memory
frames, and a share of negative pairs (a crop of another sequence, or a crop of the query frame that misses
the target: the scene's own background and distractors). Sequences are drawn uniformly (diversity over frame
count). Photometric augmentation per crop (brightness, colour, blur, motion blur) and per sample (grayscale, a
horizontal flip of every crop together, boxes and masks included); optionally sloppy reference masks
(``mask_jitter``: a tracker's own boxes are estimates). The crop size, the number of references and the crop
geometry are the model's (``TrackingSamples(..., model=...)``), never a sampling option. Sample k depends only
on (seed, k), so runs repeat exactly whatever the number of workers, and a resumed run draws the same samples as
an uninterrupted one.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import PRESETS, ModelConfig
from ..options import check_options, from_options
from .crops import CONTEXT, CropWindow, box_mask, crop, square_stretch, to_chw, xywh_to_xyxy
from .sequences import AnnotationError, FrameError, Sequence


@dataclass(frozen=True)
class SamplingConfig:
    """The sampling options of a training run (its config's ``sampling`` section)."""

    max_gap: int = 30  # references and query lie within this many frames
    scale_jitter: float = 1.3  # side *= U(1/j, j)
    shift: float = 0.4  # centre shift up to shift * side / 2 (query); a quarter of it for memory frames
    negative_ratio: float = 0.2  # share of pairs whose query does not hold the target
    same_frame_negatives: float = 0.5  # share of those negatives cropped from the query frame, off the target
    brightness: float = 0.2  # query and memory intensities *= U(1 - b, 1 + b)
    color: float = 0.1  # each channel *= U(1 - c, 1 + c)
    grayscale: float = 0.05  # probability that a sample's crops are all grayscale
    blur: float = 0.15  # probability of a Gaussian blur (sigma U(0.3, 1.5)) per crop
    motion_blur: float = 0.1  # probability of a linear motion blur (3-9 px, any angle) per crop
    flip: float = 0.5  # probability of mirroring a sample's crops left-right
    mask_jitter: float = 0.0  # reference masks: centre moved up to j/2 of the size, each side *= U(1/(1+j), 1+j)

    def __post_init__(self) -> None:
        check_options(self, "sampling option", SAMPLING_RANGES)

    @classmethod
    def from_config(cls, raw: dict) -> SamplingConfig:
        """A config's ``sampling`` section; the options the model owns are refused by name (``MODEL_OWNED``)."""
        owned = [name for name in MODEL_OWNED if isinstance(raw, dict) and name in raw]
        if owned:
            raise ValueError(f"sampling option {owned[0]} is derived from the model (model option "
                             f"{MODEL_OWNED[owned[0]]}): set that in the model section, not in sampling")
        return from_options(cls, raw, "sampling option")


SAMPLING_RANGES = {"max_gap": (1, 10**5), "scale_jitter": (1, 10), "shift": (0, 10), "mask_jitter": (0, 10),
                   **{k: (0, 1) for k in ("negative_ratio", "same_frame_negatives", "brightness", "color", "grayscale",
                                          "blur", "motion_blur", "flip")}}
# what the sampler takes from the model, never from a config: its crop size, memory size T and crop geometry
MODEL_OWNED = {"crop_size": "crop_size", "references": "memory_size", "square_crops": "square_crops"}


def motion_kernel(length: int, angle: float) -> np.ndarray:
    """A normalised (L, L) line kernel at ``angle`` radians: linear motion blur."""
    k = np.zeros((length, length), np.float32)
    c, r = (length - 1) / 2, np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length)
    k[np.round(c + r * np.sin(angle)).astype(int), np.round(c + r * np.cos(angle)).astype(int)] = 1
    return k / k.sum()


def valid_frames(seq: Sequence) -> np.ndarray:
    """Indices of frames with a usable box (finite, positive size, not marked absent)."""
    b = seq.boxes
    ok = np.isfinite(b).all(1) & (b[:, 2] > 1) & (b[:, 3] > 1)
    if seq.absent is not None:
        ok &= ~seq.absent
    return np.flatnonzero(ok)


def photometric(image: np.ndarray, c: SamplingConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness and per-channel colour gains, then a Gaussian or a motion blur: (S, S, 3) float32."""
    image *= rng.uniform(1 - c.brightness, 1 + c.brightness) * rng.uniform(1 - c.color, 1 + c.color, 3)
    if rng.random() < c.blur:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.5))
    elif rng.random() < c.motion_blur:
        image = cv2.filter2D(image, -1, motion_kernel(int(rng.integers(1, 5)) * 2 + 1, rng.uniform(0, np.pi)))
    return image


class TrackingSamples(Dataset):
    """``length`` deterministic samples from ``sequences`` for a model of config ``model`` (the lite preset when
    none is given), whose crop size, memory size (T references) and crop geometry (``square_crops``) they take;
    item k is a dict of tensors (see ``sample``)."""

    def __init__(self, sequences: list[Sequence], cfg: SamplingConfig, length: int, seed: int = 0,
                 model: ModelConfig | None = None):
        model = model or PRESETS["lite"]
        self.crop_size, self.references, self.square_crops = model.crop_size, model.memory_size, model.square_crops
        self.sequences = [s for s in sequences if len(valid_frames(s)) > self.references + 1]
        if not self.sequences:
            raise ValueError(f"none of the {len(sequences)} sequence(s) given has more than {self.references + 1} "
                             f"frames with a valid box (an initial frame, T = {self.references} references and a "
                             "query): nothing to sample")
        self.valid = [valid_frames(s) for s in self.sequences]
        self.sequence_p = np.full(len(self.sequences), 1.0) / len(self.sequences)  # each sequence alike
        self.cfg, self.length, self.seed = cfg, length, seed

    @property
    def options(self) -> dict:
        """Every option these samples are drawn with: the model's three and the sampling options."""
        return {name: getattr(self, name) for name in MODEL_OWNED} | asdict(self.cfg)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, k: int) -> dict:
        """A sample; a bad one (unreadable frame, broken box) is replaced by the next attempt and counted."""
        for attempt in range(10):
            rng = np.random.default_rng([self.seed, k, attempt])
            try:
                item = self.sample(rng)
                item["skipped"] = torch.tensor(attempt)
                return item
            except (FrameError, AnnotationError, ValueError):
                continue
        raise RuntimeError(f"sample {k}: 10 attempts in a row hit bad data")

    def pick_frames(self, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        """A sequence (drawn uniformly) and sorted frame ids: initial, T references, query."""
        s = int(rng.choice(len(self.sequences), p=self.sequence_p))
        valid, t = self.valid[s], self.references
        q = int(rng.integers(t + 1, len(valid)))  # position of the query among the valid frames
        lo = max(1, q - self.cfg.max_gap)
        refs = np.sort(rng.choice(np.arange(lo, q), size=t, replace=q - lo < t))
        first = int(rng.integers(0, refs[0])) if refs[0] > 0 else 0
        return s, valid[np.concatenate([[first], refs, [q]])]

    def jittered_window(self, box: np.ndarray, rng: np.random.Generator, shift: float,
                        stretch: float = 1.0) -> CropWindow:
        c = self.cfg
        x, y, w, h = box
        side = CONTEXT * np.sqrt(w * h) * np.exp(rng.uniform(-1, 1) * np.log(c.scale_jitter))
        dx, dy = rng.uniform(-1, 1, 2) * shift * side / 2
        return CropWindow(x + w / 2 + dx, y + h / 2 + dy, side, self.crop_size, stretch)

    def window_off_target(self, seq: Sequence, i: int, rng: np.random.Generator,
                          stretch: float = 1.0) -> CropWindow | None:
        """A crop window of frame i, of the target's crop size, centred at most a quarter side outside the frame
        and not overlapping the target's box; None when 20 draws found none (the target fills the frame)."""
        box = seq.boxes[i]
        height, width = seq.frame(i).shape[:2]
        side = self.jittered_window(box, rng, 0.0).side
        half_w, half_h = side / 2 / np.sqrt(stretch), side / 2 * np.sqrt(stretch)  # the window in frame pixels
        x1, y1, x2, y2 = xywh_to_xyxy(box)
        for _ in range(20):
            cx, cy = rng.uniform(-half_w / 2, width + half_w / 2), rng.uniform(-half_h / 2, height + half_h / 2)
            if cx + half_w < x1 or cx - half_w > x2 or cy + half_h < y1 or cy - half_h > y2:
                return CropWindow(cx, cy, side, self.crop_size, stretch)
        return None

    def off_target_view(self, s: int, i: int, rng: np.random.Generator, shift: float,
                        stretch: float) -> tuple[np.ndarray, np.ndarray]:
        """A crop of frame i of sequence s without its target, and a box of the target's size at the crop's
        centre (the box a negative pair carries): off the target in the same frame (with
        probability ``same_frame_negatives``, when the frame has room), else another sequence's frame around
        its own target (a distractor: that target's box)."""
        seq = self.sequences[s]
        window = (self.window_off_target(seq, i, rng, stretch) if rng.random() < self.cfg.same_frame_negatives
                  else None)
        if window is not None:
            image = photometric(crop(seq.frame(i), window).astype(np.float32), self.cfg, rng)
            wh = seq.boxes[i][2:] * window.scales[:2]  # the target's size in crop pixels
            return image, np.concatenate([(self.crop_size - 1 - wh) / 2, (self.crop_size - 1 + wh) / 2])
        others = [o for o in range(len(self.sequences)) if o != s] or [s]
        o = int(rng.choice(others))
        return self.view(self.sequences[o], int(rng.choice(self.valid[o])), rng, shift, stretch)

    def view(self, seq: Sequence, i: int, rng: np.random.Generator, shift: float,
             stretch: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Frame i cropped around its box: (S, S, 3) float32 and the box in crop coordinates (x1, y1, x2, y2)."""
        window = self.jittered_window(seq.boxes[i], rng, shift, stretch)
        image = photometric(crop(seq.frame(i), window).astype(np.float32), self.cfg, rng)
        return image, window.to_crop(xywh_to_xyxy(seq.boxes[i]))

    def finish(self, views: list[tuple[np.ndarray, np.ndarray]], gray: bool,
               flip: bool) -> tuple[np.ndarray, np.ndarray]:
        """A sample's crops as (K, 3, S, S) uint8 and boxes (K, 4), grayscale and mirrored together."""
        size = self.crop_size
        images, boxes = [], []
        for image, box in views:
            if gray:
                image = np.repeat(image @ np.float32([0.299, 0.587, 0.114])[:, None], 3, axis=2)  # (S, S, 3)
            if flip:
                image, box = image[:, ::-1], np.array([size - 1 - box[2], box[1], size - 1 - box[0], box[3]])
            images.append(to_chw(image.clip(0, 255).astype(np.uint8)))
            boxes.append(box)
        return np.stack(images), np.stack(boxes)

    def sloppy_box(self, box: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A reference frame's box (x1, y1, x2, y2) as a tracker may have left it: moved and resized at random
        (``mask_jitter``), so the model learns that memory masks after the first frame are estimates."""
        j = self.cfg.mask_jitter
        wh = box[2:] - box[:2]
        center = (box[:2] + box[2:]) / 2 + rng.uniform(-1, 1, 2) * j / 2 * wh
        wh = wh * np.exp(rng.uniform(-1, 1, 2) * np.log1p(j))
        return np.concatenate([center - wh / 2, center + wh / 2])

    def sample(self, rng: np.random.Generator) -> dict:
        """memory_images (N, 3, S, S) uint8, memory_masks (N, 1, S, S) float, query_image (3, S, S) uint8,
        query_box (4,) x1, y1, x2, y2 in query-crop pixels, positive () bool."""
        c = self.cfg
        s, ids = self.pick_frames(rng)
        seq = self.sequences[s]
        # as the tracker crops for a square_crops model: every crop stretched so the first frame's box is square
        stretch = square_stretch(seq.boxes[ids[0]]) if self.square_crops else 1.0
        views = [self.view(seq, int(i), rng, c.shift / 4, stretch) for i in ids[:-1]]
        positive = rng.random() >= c.negative_ratio
        views.append(self.view(seq, int(ids[-1]), rng, c.shift, stretch) if positive
                     else self.off_target_view(s, int(ids[-1]), rng, c.shift, stretch))
        images, boxes = self.finish(views, rng.random() < self.cfg.grayscale, rng.random() < self.cfg.flip)
        size = self.crop_size
        if self.cfg.mask_jitter:
            boxes[1:-1] = [self.sloppy_box(b, rng) for b in boxes[1:-1]]  # the initial frame's box is the annotation
        return {
            "memory_images": torch.from_numpy(images[:-1]),
            "memory_masks": torch.from_numpy(np.stack([box_mask(b, size)[None] for b in boxes[:-1]])),
            "query_image": torch.from_numpy(images[-1]),
            "query_box": torch.from_numpy(boxes[-1].astype(np.float32)),
            "positive": torch.tensor(bool(positive)),
        }


@contextmanager
def loader_processes(kept: str):
    """PyTorch's ``RuntimeError`` for a data loader process that failed or died (killed, out of memory, a file-size
    limit on its shared memory) as one ``OSError`` line: the process's own last words and ``kept``, what the run
    keeps."""
    try:
        yield
    except RuntimeError as err:
        if "DataLoader worker" not in str(err):
            raise
        cause = [line for line in str(err).splitlines() if line.strip()][-1]
        raise OSError(f"a data loader process stopped ({cause}); {kept}") from None
