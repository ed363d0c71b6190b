"""Training: SGD with momentum, warm-up then cosine, the trunk frozen (the shipped recipe: throughout), AMP on a GPU,
DDP through torchrun, a JSONL log of every loss term, atomic checkpoints and exact resumption. At every
checkpoint the model scores fixed samples of the val split and of the training split (``validation.jsonl``:
both losses and their gap); the lowest val loss so far is kept as ``best.safetensors`` (checkpoint selection).

``TrainConfig``'s defaults are the shipped recipe. Run: ``python -m stif_core train --config configs/lite.json
--variant full`` (every Table 1 row; the file sets only how the shipped runs were executed on a 2-core CPU)
(several processes: ``torchrun --nproc_per_node 2 -m stif_core train --config ...``).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import string
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, TextIO

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, default_collate
from tqdm.auto import tqdm

from . import build_model, resolve_device
from .checkpoint import atomic_save, read_metadata, save_weights
from .config import ModelConfig, make_config
from .data.sampling import SamplingConfig, TrackingSamples, loader_processes
from .data.sequences import Sequence, load_sequences, load_split, resolve_root
from .data.synthetic import synthetic_clip
from .device import DEVICES
from .feature_cache import CachedSamples, differences, trunk_digest, write_cache
from .files import (
    discard,
    open_append,
    output_folder,
    outside_data,
    owned_dir,
    read_json,
    read_text,
    regular_file,
    write_text,
    writing,
)
from .losses import batch_loss
from .options import MAX_JOBS, MAX_SEED, MAX_STEPS, check_options
from .tracking.search import USABLE, available_bytes

# The optimiser's constants, which no run has varied: the paper's momentum and weight decay (section 4.1.2.2),
# STMTrack's trunk rate once it trains (a tenth of the head's; the shipped recipe keeps the trunk frozen), and a
# clip of the gradient's norm. Eq. 12's lambda_1 = lambda_2 = 1 are ``losses.stif_loss``'s.
MOMENTUM, WEIGHT_DECAY, TRUNK_LR_MULT, GRAD_CLIP = 0.9, 1e-4, 0.1, 10.0
# The shipped recipe's model and sampling sections; a config file's sections add to these
SECTIONS = {"model": {"square_crops": True}, "sampling": {"mask_jitter": 0.3}}


@dataclass
class TrainConfig:
    """A training run; configs are JSON files of these fields (``configs/*.json``). The defaults are the shipped
    recipe (``recipe``: every Table 1 row, every seed)."""

    preset: str = "lite"
    variant: str = "full"
    # ModelConfig overrides of the preset: square crops (``square_crops``)
    model: dict = field(default_factory=lambda: dict(SECTIONS["model"]))
    # SamplingConfig options: sloppy reference masks (``mask_jitter``)
    sampling: dict = field(default_factory=lambda: dict(SECTIONS["sampling"]))
    split: str = "train"
    val_split: str | None = "val"  # the sequences that select the checkpoint; None: no validation
    val_samples: int = 64  # fixed samples scored at every checkpoint, from val and (for the gap) from train; 0: none
    sequences: list[str] | None = None  # explicit names instead of the split
    data_root: str | None = None
    synthetic: bool = False  # train on synthetic clips instead of real sequences (only when asked for)
    steps: int = 1200
    batch_size: int = 16
    lr: float = 0.02
    min_lr: float = 1e-5
    warmup_steps: int = 50
    freeze_backbone_steps: int = 1200  # trunks frozen for the first steps (= steps: the whole run)
    num_workers: int = 2
    threads: int = 0  # torch threads per process, 0 = leave the default
    seed: int = 0
    checkpoint_every: int = 100
    amp: bool = True  # bf16 autocast on CUDA; ignored on the CPU
    device: str = "auto"
    trunk_engine: str = "torch"  # "onnx": a frozen shared trunk runs in ONNX Runtime (CPU, one process; ~3x faster)
    feature_cache: str | None = None  # a folder of this seed's trunk features (``python -m stif_core cache``)
    out: str = "runs/lite_full"

    def __post_init__(self) -> None:
        """Every option of the right type and in its range, the ``model`` and ``sampling`` sections' too;
        ``ValueError`` naming the option otherwise."""
        check_options(self, "training option", OPTION_RANGES,
                      {"device": DEVICES, "trunk_engine": ("torch", "onnx")})
        make_config(self.preset, self.variant, **self.model)
        SamplingConfig.from_config(self.sampling)
        if self.feature_cache and self.freeze_backbone_steps < self.steps:
            raise ValueError(f"a feature cache holds a frozen trunk's features, and this run trains the trunk from "
                             f"step {self.freeze_backbone_steps} (freeze_backbone_steps < steps = {self.steps})")

    @classmethod
    def load(cls, path: str | Path, **overrides) -> TrainConfig:
        """A config file (``configs/*.json``), then ``overrides`` (None: not given). A file changes the defaults
        (the shipped recipe), or a base config that it names (``"extends"``, relative to its folder): its ``model``
        and ``sampling`` sections merge into the base's (the defaults' ``SECTIONS``), other options replace. ``out``
        may hold ``{variant}`` and ``{seed}``, filled last (``runs/lite_{variant}``: one recipe for every Table 1
        row)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        own = merge(SECTIONS, read_config(Path(path)))
        raw = own | given
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - valid)
        if unknown:
            raise ValueError(f"{path}: unknown training option(s) {unknown}; valid: {sorted(valid)}")
        if isinstance(raw.get("out"), str):
            slug = str(raw.get("variant", cls.variant)).replace("+", "_")
            try:
                parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(raw["out"]) if f is not None]
                wrong = [f"{{{f}{'!' + conv if conv else ''}{':' + spec if spec else ''}}}" for f, spec, conv in parts
                         if f not in ("variant", "seed") or spec or conv]  # no attribute, index, width or conversion
                if wrong:
                    raise KeyError(wrong[0])
                raw["out"] = raw["out"].format(variant=slug, seed=raw.get("seed", cls.seed))
            except (KeyError, IndexError, ValueError) as err:
                raise ValueError(f"{path}: out {raw['out']!r} may hold only {{variant}} and {{seed}} ({err!r})"
                                 ) from None
        try:
            return cls(**raw)
        except ValueError as err:  # an option out of its range: the file named, or the options given when it is valid
            try:
                cls(**own)
            except ValueError:
                raise ValueError(f"{path}: {err}") from None
            options = ", ".join(f"{k}={v!r}" for k, v in given.items())
            raise ValueError(f"the options given with {path} ({options}): {err}") from None


def read_config(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A config file's options with its ``extends`` chain resolved (sections ``model`` and ``sampling`` merged)."""
    raw = read_json(path, "training config")
    if not isinstance(raw, dict):
        raise ValueError(f"training config {path} must hold an object of training options")
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ValueError(f"training config {path}: 'extends' must name a config file, not {base!r}")
    parent = (path.parent / base).resolve()
    if parent in seen:
        raise ValueError(f"training config {path}: 'extends' loops back to {parent}")
    return merge(read_config(parent, (*seen, path.resolve())), raw)


def merge(base: dict, raw: dict) -> dict:
    """``raw``'s options over ``base``'s, the ``model`` and ``sampling`` sections merged."""
    raw = dict(raw)
    for section in SECTIONS:
        if isinstance(base.get(section), dict) and isinstance(raw.get(section), dict):
            raw[section] = base[section] | raw[section]
    return base | raw


def foreign_checkpoint(path: Path, why: str | Exception) -> ValueError:
    """The one-line error of a training checkpoint that cannot be resumed from; ``why``: the problem, or the error
    that loading it raised (its first line)."""
    if isinstance(why, Exception):
        text = str(why).strip()
        why = f"{type(why).__name__}: {text.splitlines()[0][:160]}" if text else type(why).__name__
    return ValueError(f"training checkpoint {path} is truncated or not one this tool wrote ({why}); delete it to "
                      "train from step 0, or choose another --out")


def read_checkpoint(path: Path, device: torch.device) -> dict:
    """A training checkpoint (``Trainer.save_checkpoint``), loaded without unpickling code: a dict of ``model``,
    ``optimizer``, ``step`` (an int) and ``config`` (a dict); ``ValueError`` naming the file otherwise."""
    regular_file(path, "training checkpoint")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, AttributeError) as err:
        raise foreign_checkpoint(path, err) from None
    entries = {"model": dict, "optimizer": dict, "step": int, "config": dict}
    wrong = [k for k, kind in entries.items() if not isinstance(state, dict) or not isinstance(state.get(k), kind)]
    if wrong:
        raise foreign_checkpoint(path, f"no {', '.join(wrong)} entry of the expected type")
    steps = state["config"].get("steps")
    if isinstance(state["step"], bool) or not (0 <= state["step"] <= (steps if type(steps) is int else -1)):
        raise foreign_checkpoint(path, f"step {state['step']} is not within the 0-{steps} steps its config records")
    data = state.get("data", {})  # sequence -> fingerprint; absent in checkpoints written before it was recorded
    if not (isinstance(data, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in data.items())):
        raise foreign_checkpoint(path, "its 'data' entry is not an object of sequence -> fingerprint")
    return state


def data_prints(sequences: list[Sequence]) -> dict[str, str]:
    """Each sequence's fingerprint (``Sequence.fingerprint``: its frames' content and its ground truth), recorded in
    a training checkpoint for the training and the validation sequences: a resume on other data is refused."""
    return {seq.name: seq.fingerprint() for seq in sequences}


def data_changes(stored: dict[str, str], now: dict[str, str]) -> str:
    """What differs between two ``data_prints`` (empty: nothing)."""
    parts = [f"{label}: {', '.join(names[:5])}" + (" ..." if len(names) > 5 else "") for label, names in (
        ("frames or ground truth changed", sorted(n for n in stored.keys() & now.keys() if stored[n] != now[n])),
        ("no longer trained on", sorted(stored.keys() - now.keys())), ("added", sorted(now.keys() - stored.keys())))
        if names]
    return "; ".join(parts)


OPTION_RANGES = {"steps": (1, MAX_STEPS), "batch_size": (1, 256), "lr": (0, 10), "min_lr": (0, 10),
                 "warmup_steps": (0, MAX_STEPS), "freeze_backbone_steps": (0, MAX_STEPS),
                 "num_workers": (0, MAX_JOBS), "threads": (0, MAX_JOBS), "seed": (0, MAX_SEED),
                 "checkpoint_every": (1, MAX_STEPS),
                 "val_samples": (0, 1000)}  # val_samples: held in memory, twice (val and train)


RUN_ONLY = ("variant", "seed", "out", "device", "num_workers", "threads", "trunk_engine", "data_root", "feature_cache")


def recipe(cfg: TrainConfig) -> dict:
    """The options that decide what a run learns, shared by every Table 1 row and seed of one recipe: all but the
    row, the seed and how the run is executed (``RUN_ONLY``; the ONNX trunk computes the PyTorch trunk's
    features, a feature cache holds them)."""
    return {k: v for k, v in asdict(cfg).items() if k not in RUN_ONLY}


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up from min_lr to lr, then cosine down to min_lr at the last step."""
    if step < cfg.warmup_steps:
        return cfg.min_lr + (cfg.lr - cfg.min_lr) * step / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


def training_sequences(cfg: TrainConfig) -> list[Sequence]:
    """The configured real sequences (a missing or empty data root is an error), or synthetic clips when
    ``cfg.synthetic`` asks for them."""
    if cfg.synthetic:
        return [synthetic_clip(120, seed=cfg.seed + i, name=f"synthetic-{i}") for i in range(4)]
    if cfg.sequences == []:
        raise ValueError("training option sequences=[] names no sequence; give names, or null to use the split")
    names = cfg.sequences or load_split(cfg.split, cfg.data_root)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"training option sequences names {twice[:5]} more than once (a sequence given twice is "
                         "sampled twice as often): give each sequence once")
    if cfg.val_split:
        shared = sorted(set(names) & set(load_split(cfg.val_split, cfg.data_root)))
        if shared:
            trained = "sequences" if cfg.sequences else f"split {cfg.split!r}"
            raise ValueError(f"the training {trained} and val_split {cfg.val_split!r} share {len(shared)} "
                             f"sequence(s), e.g. {shared[:5]}: validation would score what is trained on; train and "
                             "validate on different sequences, or set val_split to null")
    return load_sequences(names, cfg.data_root)


def validation_sequences(cfg: TrainConfig) -> list[Sequence]:
    """The sequences of ``cfg.val_split`` (synthetic clips of other seeds when training is synthetic)."""
    if cfg.synthetic:
        return [synthetic_clip(120, seed=cfg.seed + 100 + i, name=f"synthetic-val-{i}") for i in range(2)]
    return load_sequences(load_split(cfg.val_split, cfg.data_root), cfg.data_root)


def fixed_samples(sequences: list[Sequence], sampling: SamplingConfig, n: int, seed: int,
                  model: ModelConfig) -> list[dict]:
    """``n`` samples for ``model`` without photometric augmentation, flips or sloppy masks, the same at every
    call: a validation probe."""
    plain = replace(sampling, brightness=0.0, color=0.0, grayscale=0.0, blur=0.0, motion_blur=0.0, flip=0.0,
                    mask_jitter=0.0)
    data = TrackingSamples(sequences, plain, length=n, seed=seed, model=model)
    return [data[k] for k in range(n)]


def data_record(cfg: TrainConfig, sequences: list[Sequence]) -> dict:
    """What a model was trained on, for its metadata: the source, the names, and a SHA-256 over every
    sequence's name, frame count and ground truth."""
    digest = hashlib.sha256()
    for seq in sequences:
        digest.update(f"{seq.name}:{len(seq)}:".encode())
        digest.update(seq.boxes.tobytes())
    return {"source": "synthetic" if cfg.synthetic else "real", "split": None if cfg.sequences else cfg.split,
            "sequences": [s.name for s in sequences], "sha256": digest.hexdigest()}


def trunk_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The encoders' trunk weights (the shared trunk, or both trunks), a first-conv mask projection included."""
    return [p for n, p in model.named_parameters() if ".trunk." in f".{n}"]


def set_trunks_trainable(model: torch.nn.Module, trainable: bool) -> None:
    """Freeze or free the trunks (``trunk_parameters``: the paper preset's first-conv mask projection is part of its
    memory trunk; the lite preset's mask term enters after the neck and always trains). Frozen, no gradient flows
    through them, which makes those steps several times cheaper; batch-norm statistics stay the trunk's own (its
    pre-training's) either way."""
    for p in trunk_parameters(model):
        p.requires_grad_(trainable)
    for name, m in model.named_modules():
        if ".trunk" in f".{name}" and isinstance(m, torch.nn.BatchNorm2d):
            m.eval()


def join_processes(device: str) -> tuple[torch.device, bool, int, int]:
    """This process's device, whether it is one of several (``torchrun``: ``$WORLD_SIZE`` > 1), its rank and the
    number of processes; several join one process group (NCCL on GPUs, each its ``$LOCAL_RANK``'s, else gloo)."""
    dev = resolve_device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return dev, False, 0, 1
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return dev, True, dist.get_rank(), dist.get_world_size()


def sgd(model: torch.nn.Module, lr: float) -> torch.optim.SGD:
    """SGD with momentum over two parameter groups: the trunks' at ``TRUNK_LR_MULT`` times the others' rate (each
    group's ``mult``, applied by ``lr_at``'s caller at every step)."""
    trunk = {id(p) for p in trunk_parameters(model)}
    groups = [{"params": [p for p in model.parameters() if id(p) not in trunk], "mult": 1.0},
              {"params": [p for p in model.parameters() if id(p) in trunk], "mult": TRUNK_LR_MULT}]
    return torch.optim.SGD(groups, lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.device, self.distributed, self.rank, self.world = join_processes(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.preset, cfg.variant, device=str(self.device.type), **cfg.model)
        self.model.to(self.device)
        self.optimizer = sgd(self.model, cfg.lr)
        self.net = self.model
        if self.distributed:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        if cfg.trunk_engine == "onnx" and (self.distributed or self.device.type != "cpu"):
            raise ValueError("training option trunk_engine='onnx' runs on the CPU in one process; use 'torch' "
                             "with a GPU or torchrun")
        self.frozen_trunk = None  # built when training starts, from the weights it starts with
        check_training_fits(self.model.cfg, cfg.batch_size, available_bytes(self.device))
        # rank 0 claims the folder and the others wait: two ranks checking at once would each see the other's mark
        outside_the_data(cfg, cfg.out, "training output folder")
        made = not os.path.lexists(cfg.out)
        self.out = owned_dir(cfg.out, "training output folder") if self.rank == 0 else \
            Path(cfg.out).resolve()
        if made and self.rank == 0:  # checked here, made by ``fit`` (which removes it again if the run is refused)
            self.out.rmdir()
        if self.distributed:
            dist.barrier()
        self.step = 0
        self.best_val = math.inf
        self.trained_on: dict[str, str] | None = None  # the data of the checkpoint resumed from (``data_prints``)
        self.prints: dict[str, str] = {}  # the data of this run (``data_prints``), once it is loaded
        self.selected: Path | None = None  # the weights the finished run selected (``selected_weights``)
        self.resume()

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def resume(self) -> None:
        """Continue from ``out/checkpoint.pt`` when it exists (weights, optimizer, step); one that is truncated or
        not this tool's is refused, naming it."""
        if not self.checkpoint_path.exists():
            return
        state = read_checkpoint(self.checkpoint_path, self.device)
        was = differences(state["config"], asdict(self.cfg) | {"out": state["config"].get("out")})
        if was:
            raise ValueError(f"{self.checkpoint_path} was written by another training config ({was}); resume with "
                             "the same options, or use another --out")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError) as err:
            raise foreign_checkpoint(self.checkpoint_path, err) from None
        self.step = state["step"]
        self.trained_on = state.get("data")

    def save_checkpoint(self) -> None:
        if self.rank == 0:
            atomic_save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                         "step": self.step, "config": asdict(self.cfg), "data": self.prints}, self.checkpoint_path)

    def loader(self, dataset: TrackingSamples, end: int) -> DataLoader:
        """Batches of the steps still to run up to ``end``; rank r takes its own slice of each global batch."""
        b = self.cfg.batch_size
        order = [(s * self.world + self.rank) * b + i for s in range(self.step, end) for i in range(b)]
        return DataLoader(dataset, batch_size=b, sampler=order, num_workers=self.cfg.num_workers,
                          persistent_workers=False, pin_memory=self.device.type == "cuda")

    def train_step(self, batch: dict) -> dict[str, float]:
        cfg, dev = self.cfg, self.device
        lr = lr_at(self.step, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["mult"]
        if self.step == cfg.freeze_backbone_steps:
            set_trunks_trainable(self.model, True)
            self.frozen_trunk = None  # the trunk trains from here: PyTorch's
        terms = batch_loss(self.net, batch, self.model.centers, autocast=cfg.amp and dev.type == "cuda",
                           trunk=self.frozen_trunk)
        if not torch.isfinite(terms["loss"]):
            cache = (f" (feature cache {cfg.feature_cache}: rebuild it if its features are damaged)"
                     if cfg.feature_cache else "")
            raise FloatingPointError(f"step {self.step}: loss is {terms['loss'].item()}{cache}")
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        self.optimizer.step()
        row = {k: round(float(v.detach()), 6) for k, v in terms.items()}
        row.update(step=self.step, lr=lr, skipped=int(batch["skipped"].sum()))
        return row

    def fit(self, progress: bool = True, on_step: Callable[[dict], None] | None = None,
            stop_at: int | None = None) -> Path:
        """Train to ``cfg.steps``, or stop early at step ``stop_at`` (a time budget: the schedule stays that of
        ``cfg.steps``, and a later run without ``stop_at`` resumes from there). ``on_step(row)`` sees every log
        row (live plots). Returns the path of the safetensors weights written at the end. Rank 0 holds the output
        folder for the run (``files.output_folder``: one run at a time)."""
        held = output_folder(self.out, "train", "training output folder") if self.rank == 0 else nullcontext()
        kept = (f"the run keeps its last checkpoint (every {self.cfg.checkpoint_every} steps) in {self.out}: the "
                "same command resumes from it")
        with held, loader_processes(kept):
            return self.run_steps(progress, on_step, stop_at)

    def run_steps(self, progress: bool, on_step: Callable[[dict], None] | None, stop_at: int | None) -> Path:
        """``fit``'s loop."""
        cfg = self.cfg
        end = min(cfg.steps, stop_at or cfg.steps)
        dataset, validating = self.prepare_data()  # bad data fails before any file is written
        self.out.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            write_text(self.out / "config.json", json.dumps(asdict(cfg), indent=2))
        self.net.train()
        set_trunks_trainable(self.model, self.step >= cfg.freeze_backbone_steps)
        if cfg.trunk_engine == "onnx" and self.step < cfg.freeze_backbone_steps:
            from .model.ort import FrozenTrunk

            self.frozen_trunk = FrozenTrunk(self.model)
        if self.step == 0 and self.rank == 0:  # a fresh run: what a run that never reached a checkpoint left is stale
            for name in ("log.jsonl", "validation.jsonl", "best.safetensors", "model.safetensors"):
                if (self.out / name).exists():
                    discard(self.out / name)
        log = self.open_log("log.jsonl", self.step - 1) if self.rank == 0 else None
        vlog = self.open_log("validation.jsonl", self.step) if validating else None
        if vlog and self.step == 0:
            write_row(vlog, self.validate())
        bar = tqdm(total=end, initial=self.step, disable=not progress or self.rank != 0, desc="train")
        start = time.perf_counter()
        for batch in self.loader(dataset, end):
            row = self.train_step(batch)
            self.step += 1
            row["elapsed_s"] = round(time.perf_counter() - start, 3)
            if log:
                write_row(log, row)
            if on_step is not None:
                on_step(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", iou=f"{row['iou']:.2f}")
            bar.update()
            if self.step % cfg.checkpoint_every == 0 or self.step == end:
                if vlog:  # before the checkpoint: a run resumed from it never lacks its validation row
                    write_row(vlog, self.validate())
                self.save_checkpoint()
        bar.close()
        for f in (log, vlog):
            if f:
                f.close()
        final = self.out / "model.safetensors"
        if self.rank == 0:
            save_weights(self.model, final, self.weights_metadata())
        self.selected = selected_weights(final, self.weights_metadata(), self.step) if validating else final
        if self.distributed:
            dist.barrier()
            dist.destroy_process_group()
        return final

    def prepare_data(self) -> tuple[TrackingSamples | CachedSamples, bool]:
        """The run's training samples (from the feature cache when it has one) and whether it validates (rank 0,
        with a val split): the data checked against the checkpoint resumed from, the val and train probes drawn."""
        cfg = self.cfg
        sampling = sampling_config(cfg)
        dataset = TrackingSamples(training_sequences(cfg), sampling, length=cfg.steps * cfg.batch_size * self.world,
                                  seed=cfg.seed, model=self.model.cfg)
        self.data = data_record(cfg, dataset.sequences)
        sequences = dataset.sequences
        validating = self.rank == 0 and bool(cfg.val_split) and cfg.val_samples > 0
        val_sequences = validation_sequences(cfg) if validating else []
        self.prints = data_prints(sequences) | {f"val {k}": v for k, v in data_prints(val_sequences).items()}
        now = self.prints if any(k.startswith("val ") for k in self.trained_on or {}) else data_prints(sequences)
        changed = data_changes(self.trained_on, now) if self.trained_on else ""  # val too, where it was recorded
        if changed:  # the same options, another data set: the run would mix two
            raise ValueError(f"{self.checkpoint_path} was trained on other data than {cfg.data_root or 'the data root'}"
                             f" holds now ({changed}); resume on the data it was trained on, or use another --out")
        if validating:
            m = self.model.cfg
            self.probes = {"val": fixed_samples(val_sequences, sampling, cfg.val_samples, cfg.seed + 1, m),
                           "train": fixed_samples(sequences, sampling, cfg.val_samples, cfg.seed + 2, m)}
        if cfg.feature_cache:
            dataset = CachedSamples(cfg.feature_cache, cache_key(cfg, self.model, dataset))
        return dataset, validating

    def weights_metadata(self) -> dict[str, str]:
        return {"preset": self.cfg.preset, "variant": self.cfg.variant, "steps": str(self.step),
                "seed": str(self.cfg.seed), "recipe": json.dumps(recipe(self.cfg), sort_keys=True),
                "data": json.dumps(self.data)}

    def validate(self) -> dict:
        """Score the val and train probes: both losses, their gap, and whether this is the best val loss so
        far (then the weights are written to ``best.safetensors``)."""
        row = {"step": self.step}
        for name, samples in self.probes.items():
            terms = mean_terms(self.model, samples, self.cfg.batch_size, self.frozen_trunk)
            row.update({f"{name}_{k}": v for k, v in terms.items()})
        self.model.train()
        set_trunks_trainable(self.model, self.step >= self.cfg.freeze_backbone_steps)
        row["gap"] = round(row["val_loss"] - row["train_loss"], 6)
        row["best"] = row["val_loss"] < self.best_val
        if row["best"]:
            self.best_val = row["val_loss"]
            save_weights(self.model, self.out / "best.safetensors",
                         self.weights_metadata() | {"selected_by": "val_loss", "val_loss": str(row["val_loss"])})
        return row

    def open_log(self, name: str, last_step: int):
        """``resumed_log`` of ``out``; the best val loss among its kept rows is remembered."""
        f, best = resumed_log(self.out / name, last_step)
        self.best_val = min(self.best_val, best)
        return f


def selected_weights(final: Path, own: dict[str, str], step: int) -> Path:
    """The weights a run that validates selected by its lowest val loss: ``best.safetensors`` beside its last
    step's ``final``, refused unless its metadata names the run (``own``: its row, seed, recipe, data; a step it
    reached); deleted since (no step left to rewrite it): a warning, and ``final``."""
    best = final.with_name("best.safetensors")
    if not best.exists():
        warnings.warn(f"{best} is missing: the weights at the lowest val loss are lost; train again in another "
                      "--out to select them", stacklevel=3)
        return final
    meta, own = read_metadata(best), own | {"model": read_metadata(final).get("model")}
    other = [k for k in ("preset", "variant", "seed", "recipe", "data", "model") if meta.get(k) != own[k]]
    if other or not meta.get("steps", "").isdigit() or int(meta["steps"]) > step:
        raise ValueError(f"{best} was not written by this run (its {', '.join(other) or 'step'} differ); it is "
                         "never selected: move it away, or train in another --out")
    return best


@torch.no_grad()
def mean_terms(model: torch.nn.Module, samples: list[dict], batch_size: int, trunk=None) -> dict[str, float]:
    """Eq. 12's terms averaged over fixed samples, the model in eval mode (left so)."""
    model.eval()
    sums = {}
    for i in range(0, len(samples), batch_size):
        chunk = samples[i:i + batch_size]
        for k, v in batch_loss(model, default_collate(chunk), model.centers, trunk=trunk).items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(chunk)
    return {k: round(v / len(samples), 6) for k, v in sums.items()}


def sampling_config(cfg: TrainConfig) -> SamplingConfig:
    """The run's sampling options (the crop size, memory size and crop geometry are the model's:
    ``TrackingSamples(..., model=...)``)."""
    return SamplingConfig.from_config(cfg.sampling)


def cache_key(cfg: TrainConfig, model: torch.nn.Module, samples: TrackingSamples) -> dict:
    """What a feature cache of ``samples`` holds: the seed, the count, every sampling option, the data (names,
    ground truth and the frames' content) and the trunk's weights. Every Table 1 row of one seed and recipe has the
    same key."""
    frames = hashlib.sha256("".join(s.fingerprint() for s in samples.sequences).encode()).hexdigest()[:16]
    return {"seed": cfg.seed, "length": len(samples), "sampling": samples.options,
            "data": data_record(cfg, samples.sequences)["sha256"], "frames": frames, "trunk": trunk_digest(model)}


def resumed_log(path: Path, last_step: int) -> tuple[TextIO, float]:
    """A JSONL training log, cut back (atomically) to the rows of steps up to ``last_step``, which the checkpoint
    holds (a resumed run redoes the rest), open for appending, and the best val loss among the kept rows. A torn
    last line, left by a kill during a write, is dropped; a bad line elsewhere is an error."""
    lines = read_text(path, "training log").splitlines() if path.exists() else []
    kept, best = [], math.inf
    for n, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                break
            raise ValueError(f"{path}, line {n}: not a JSON log row") from None
        if not isinstance(row, dict) or type(row.get("step")) is not int:
            raise ValueError(f"{path}, line {n}: not a log row of this tool (an object with an integer 'step')")
        if row["step"] <= last_step:
            kept.append(line)
            best = min(best, row.get("val_loss", math.inf))
    write_text(path, "".join(r + "\n" for r in kept))
    return open_append(path), best


def write_row(f: TextIO, row: dict) -> None:
    with writing(Path(str(getattr(f, "name", "training log"))), kept="its earlier rows are kept"):  # names the log
        f.write(json.dumps(row) + "\n")
        f.flush()


def build_feature_cache(cfg: TrainConfig, out: str | Path, progress: bool = True) -> Path:
    """The feature cache of ``cfg``'s samples (its seed, ``steps * batch_size`` samples) in ``out``, made on the CPU
    with the trunk the run starts from (in ONNX Runtime with ``trunk_engine="onnx"``); resumes a stopped build."""
    if cfg.freeze_backbone_steps < cfg.steps:
        raise ValueError("this recipe trains the trunk (freeze_backbone_steps < steps): its features change as it "
                         "learns, so no cache can hold them")
    outside_the_data(cfg, out, "feature cache folder")
    if cfg.device == "cuda":  # the config's device is the training's; the frozen trunk's features are encoded once
        warnings.warn("the feature cache is encoded on the CPU; the config's device 'cuda' is the training's",
                      stacklevel=2)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model = build_model(cfg.preset, cfg.variant, device="cpu", **cfg.model).eval()
    samples = TrackingSamples(training_sequences(cfg), sampling_config(cfg), length=cfg.steps * cfg.batch_size,
                              seed=cfg.seed, model=model.cfg)
    if cfg.trunk_engine == "onnx":
        from .model.ort import FrozenTrunk

        trunk = FrozenTrunk(model)
    else:
        trunk = model.trunk_features
    return write_cache(samples, trunk, cache_key(cfg, model, samples), out, cfg.batch_size, cfg.num_workers, progress)


# Bytes a training step holds per crop pixel (forward and backward, each memory crop and the query's), measured
# on the lite model with 4 memory frames: 2.7 KB at 161 pixels (664 MiB for 2 samples), 2.5 KB at 321.
STEP_BYTES_PER_PIXEL = 2700


def check_training_fits(model: ModelConfig, batch_size: int, available: int) -> None:
    """``ValueError`` naming the crop size, the batch size and the estimate when a training step would not fit the
    memory ``available`` (bytes): a crop of 4001 pixels would need hundreds of GB and grow until the machine
    stops."""
    crops = batch_size * (model.memory_size + 2)  # the initial frame, the references and the query
    need = STEP_BYTES_PER_PIXEL * model.crop_size ** 2 * crops
    if need > USABLE * available:
        gib = 2**30
        raise ValueError(f"training crops of {model.crop_size} pixels, {batch_size} samples a step, need about "
                         f"{need / gib:.1f} GiB and {USABLE * available / gib:.1f} GiB can be used: give a smaller "
                         "crop_size or batch_size")


def outside_the_data(cfg: TrainConfig, out: str | Path, what: str) -> None:
    """``ValueError`` when ``out`` lies inside the run's data root (real sequences only)."""
    if not cfg.synthetic:
        outside_data(out, resolve_root(cfg.data_root), what)
