"""Online tracking with STIF (docs/design.md, section 8).

Each frame: crop a search region of side 4 * sqrt(w * h) around the previous centre, run the query step
against the cached memory, pick the peak of the penalised, windowed score (SiamRPN/STMTrack), update the box,
then encode this very crop with the new box as mask and cache it as a memory frame (with a shared trunk, from the
work the query step already did on it). Memory holds the initial frame plus T reference frames, so its
size never grows with the video.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch.profiler import record_function

from ..data.crops import CropWindow, box_mask, crop, square_stretch, xywh_to_xyxy
from ..model import STIF, STIFOutput
from .engine import check_engine, make_engine
from .memory import DEFAULT_MEMORY_POLICY, MemoryEntry, make_memory
from .protocol import FrameResult, TrackerFailure, check_frame, check_init_box, check_next_frame
from .search import SearchRegion, available_bytes, check_fits, network_for
from .selection import PARAM_SETS, Selection, TrackerParams, cosine_window, next_box, select_cell


@dataclass
class Inspection:
    """One query step laid open (``STIFTracker.inspect``): inputs, every internal map and the decision."""

    window: CropWindow
    query_crop: np.ndarray  # (S, S, 3)
    entries: list[MemoryEntry]
    output: STIFOutput  # with internals
    selection: Selection
    box: np.ndarray  # (4,) x, y, w, h the frame's box would be


class STIFTracker:
    """The tracker protocol of the project: ``init(frame, box)``, ``update(frame) -> FrameResult``.

    ``memory_policy``: which past frames the network reads (``tracking.memory``: "recent", the paper's adjacent
    frames, or "stmtrack", the default).
    """

    def __init__(self, model: STIF, params: TrackerParams | str = "otb", memory_policy: str = DEFAULT_MEMORY_POLICY,
                 keep_score_maps: bool = False, engine: str = "torch", search_size: int | None = None,
                 keep_internals: bool = False):
        if isinstance(params, str):
            if params not in PARAM_SETS:
                raise ValueError(f"unknown tracker parameter set {params!r}; valid: {list(PARAM_SETS)}")
            params = PARAM_SETS[params]
        frames = make_memory(memory_policy, model.cfg.memory_size).most  # an unknown policy fails here
        check_engine(engine)  # an unknown engine too
        # search_size: the crops' side in pixels at the training scale (None: the model's crop_size); a smaller one
        # searches a smaller region around the last position, for less work. The tracker then runs a copy built
        # for that crop (``search.network_for``): hooks added to ``model`` later do not reach it; add them to
        # ``tracker.model``. A search size whose step would not fit the memory of the device it runs on fails here.
        self.search = SearchRegion.of(model.cfg, search_size)
        device = torch.device("cpu") if engine == "onnx" else next(model.parameters()).device
        check_fits(model.cfg, self.search, frames, engine, available_bytes(device))
        model = network_for(model, self.search)
        self.model = model.eval()
        self.engine = make_engine(engine, self.model)  # "onnx": ONNX Runtime for update; inspect stays in PyTorch
        self.params, self.policy, self.keep_score_maps = params, memory_policy, keep_score_maps
        # keep_internals: update() also runs the step in PyTorch with every internal map and keeps it laid open in
        # ``last`` (an Inspection), for ``track``; the box comes from the engine's own step, as without it (the
        # chosen cell can flip between near-equal cells at float rounding, so the maps' pass must not decide)
        self.keep_internals, self.last = keep_internals, None
        self.stretch = 1.0
        cfg = model.cfg
        self.size, self.t = cfg.crop_size, cfg.memory_size
        self.device = next(model.parameters()).device
        self.window = cosine_window(cfg.score_size)  # (HW,)
        self.frame_shape = None  # (H, W) of the frame init() started on

    # ------------------------------------------------------------------ memory

    @torch.no_grad()
    def make_entry(self, index: int, frame_crop: np.ndarray, box_crop: np.ndarray, score: float = 1.0,
                   query: torch.Tensor | None = None) -> MemoryEntry:
        """Encode one memory frame: (S, S, 3) crop and its box in crop coordinates -> features (1, C, H, W).
        ``query``: the crop's F_q (1, C, H, W) when the query step computed it, reused where the model can."""
        image = torch.as_tensor(frame_crop, device=self.device).permute(2, 0, 1).float()  # (3, S, S)
        mask = torch.as_tensor(box_mask(box_crop, self.size), device=self.device)  # (S, S)
        features = self.engine.memory(image[None], mask[None, None], query)  # (1, C, H, W)
        return MemoryEntry(index, features, score, frame_crop, np.asarray(box_crop))

    def entry_from_frame(self, index: int, frame: np.ndarray, box: np.ndarray) -> MemoryEntry:
        """A memory entry for any frame and box (x, y, w, h), cropped as the initial frame is."""
        window = self.search.window(box[:2] + box[2:] / 2, box[2:], self.stretch)
        return self.make_entry(index, crop(frame, window), window.to_crop(xywh_to_xyxy(box)))

    def memory(self) -> list[MemoryEntry]:
        """The entries fed to the network now, the initial frame first (the memory policy's pick)."""
        return self.past.pick(self.initial)

    def remember(self, entry: MemoryEntry) -> None:
        """Hand a new frame's entry to the memory policy."""
        self.past.add(entry)

    # ------------------------------------------------------------------ protocol

    def frame_scope(self):
        """The context of one frame's work: the engine's (``OnnxEngine.frame_scope``), except with
        ``keep_internals``, whose second step runs in PyTorch and needs its threads."""
        return nullcontext() if self.keep_internals else self.engine.frame_scope()

    def init(self, frame: np.ndarray, box: np.ndarray) -> None:
        box = check_init_box(box, check_frame(frame).shape)
        with torch.no_grad(), self.frame_scope():
            self.frame_shape = None  # set last: a failed init leaves a tracker that refuses update()
            self.center = box[:2] + box[2:] / 2
            self.wh = box[2:].copy()
            self.index = 0
            self.stretch = square_stretch(box) if self.model.cfg.square_crops else 1.0  # as the model was trained
            self.initial = self.entry_from_frame(0, frame, box)
            self.past = make_memory(self.policy, self.t)  # the past frames the policy holds (the initial one aside)
            self.frame_shape = frame.shape[:2]

    def query_window(self) -> CropWindow:
        """The search region of the next frame: side 4 * sqrt(w * h) around the current centre (less with a
        ``search_size`` below the model's crop)."""
        return self.search.window(self.center, self.wh, self.stretch)

    @torch.no_grad()
    def run_step(self, patch: np.ndarray, window: CropWindow, entries: list[MemoryEntry],
                 internals: bool) -> tuple[STIFOutput, Selection, np.ndarray, torch.Tensor]:
        """The network on one query crop against ``entries``; the chosen cell, the frame box it gives, and the
        crop's F_q (1, C, H, W)."""
        query = torch.as_tensor(patch, device=self.device).permute(2, 0, 1).float()[None]  # (1, 3, S, S)
        with record_function("query encode"):
            encoded = self.engine.query(query)  # (1, C, H, W)
        memory = torch.stack([e.features for e in entries], 1)  # (1, N, C, H, W)
        with record_function("step"):
            out = self.engine.step(memory, encoded, internals=internals)
        with record_function("select"):
            sel = self.select(out, window)
        return out, sel, self.next_box(window.to_frame(sel.box_crop), sel.lr), encoded

    def update(self, frame: np.ndarray) -> FrameResult:
        frame = check_next_frame(frame, self.frame_shape)
        with torch.no_grad(), self.frame_scope():
            self.index += 1
            window = self.query_window()
            with record_function("crop"):
                patch = crop(frame, window)  # (S, S, 3)
            entries = self.memory()
            out, sel, box, query = self.run_step(patch, window, entries, internals=False)
            if not np.isfinite(box).all():  # a network gone wrong: never a box, nor a memory entry, of NaN
                raise TrackerFailure(f"frame {self.index}: the network gave a non-finite box {box.tolist()}")
            if self.keep_internals:  # the maps from a second step in PyTorch; the box stays the engine's
                memory = torch.stack([e.features for e in entries], 1)  # (1, N, C, H, W)
                self.last = Inspection(window, patch, entries, self.model.step(memory, query, internals=True),
                                       sel, box)
            self.center, self.wh = box[:2] + box[2:] / 2, box[2:]
            with record_function("memory encode"):
                entry = self.make_entry(self.index, patch, window.to_crop(xywh_to_xyxy(box)), sel.score, query)
            self.remember(entry)
        h = self.model.cfg.score_size
        weights = out.temporal_weights[0].cpu().numpy() if out.temporal_weights is not None else None
        return FrameResult(box=box, score=sel.score, peak=divmod(sel.best, h),
                           memory_frames=[e.frame for e in entries], temporal_weights=weights,
                           score_map=sel.score_map.reshape(h, h).numpy() if self.keep_score_maps else None)

    @torch.no_grad()
    def inspect(self, frame: np.ndarray, entries: list[MemoryEntry] | None = None,
                model: STIF | None = None) -> Inspection:
        """What the next ``update(frame)`` would compute, with every internal map, without changing the state.
        ``entries`` replaces the memory (drop a frame, swap another in: the notebooks' what-if explorer);
        ``model`` runs the step instead of the tracker's own (the same weights read another way:
        ``stif_core.model.readings.with_reading``)."""
        window = self.query_window()
        patch = crop(check_next_frame(frame, self.frame_shape), window)  # (S, S, 3)
        entries = self.memory() if entries is None else entries
        engine = self.engine
        if model is not None:
            shape = lambda c: (c.crop_size, c.score_size, c.channels)  # noqa: E731
            if shape(model.cfg) != shape(self.model.cfg):
                raise ValueError(f"inspect(model=...): crops, grid and channels {shape(model.cfg)} differ from the "
                                 f"tracker's model's {shape(self.model.cfg)}: its memory features do not fit")
            self.engine = make_engine("torch", model.eval())
        try:
            out, sel, box, _ = self.run_step(patch, window, entries, internals=True)
        finally:
            self.engine = engine
        return Inspection(window, patch, entries, out, sel, box)

    def select(self, out: STIFOutput, window: CropWindow) -> Selection:
        """The chosen cell of a step's head maps against the current box (``selection.select_cell``)."""
        return select_cell(out, self.model.centers, window, self.wh, self.window, self.params)

    def next_box(self, box_frame_xyxy: np.ndarray, lr: float) -> np.ndarray:
        """The box that follows the chosen one (``selection.next_box``)."""
        return next_box(box_frame_xyxy, lr, self.wh, self.frame_shape, self.params.min_size)
