"""A feature cache: the frozen trunk's features of every sample one training seed draws, computed once and read by
every Table 1 row of that seed. The rows differ only after the trunk, and sample k depends only on the seed and the
sampling options, so a run that reads the cache learns what a run that crops and encodes its samples learns, to
the rounding of float16 storage, for the cost of the layers that learn (``docs/design.md``, section 7).

Files: ``features.npy`` (L, N + 1, Ct, H', W') float16, the memory crops then the query crop of each sample;
``masks.npy`` (L, N, 4) int16, each memory mask's rectangle (columns x0:x1, rows y0:y1: a box's mask is one);
``query_boxes.npy`` (L, 4) float32; ``positive.npy`` and ``skipped.npy`` (L,); ``cache.json``: what the samples
are (``key``), how many are written (``done``) and, once complete, a digest of the arrays' contents
(``content_digest``). A build stopped part way resumes from ``done``; a cache of other samples, or with an array
file of another cache, is refused. One seed's cache of the lite recipe: 19,200 samples, 9.5 GB.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .data.sampling import TrackingSamples, loader_processes
from .files import WriteError, checked_target, output_folder, read_json, regular_file, write_text, writing
from .losses import trunk_outputs

META = "cache.json"
FLUSH_EVERY = 20  # batches between two records of progress
ARRAYS = {"features": (np.float16, 5), "masks": (np.int16, 3), "query_boxes": (np.float32, 2),
          "positive": (np.bool_, 1), "skipped": (np.int16, 1)}  # file stem -> dtype, dimensions


def trunk_digest(model: torch.nn.Module) -> str:
    """SHA-256 (12 hex digits) over the shared trunk's weights and buffers: a cache serves only that trunk."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.query_encoder.trunk.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def differences(stored: dict, asked: dict) -> str:
    """``key=stored (now asked)`` for every key of two cache keys that differ, nested sections flattened."""
    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(stored), flat(asked)
    changed = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return ", ".join(f"{k}={a.get(k)!r} (now {b.get(k)!r})" for k in changed)


def write_cache(samples: TrackingSamples, trunk, key: dict, out: str | Path, batch_size: int = 16,
                workers: int = 0, progress: bool = True) -> Path:
    """Encode ``samples`` with ``trunk`` (crops (B, 3, S, S) -> (B, Ct, H', W'), no gradient) into the folder
    ``out`` (held for the build: ``files.output_folder``); ``key`` says what the samples are. Resumes a build of
    the same key; returns ``out``."""
    with output_folder(out, "cache", "feature cache folder") as out, \
            loader_processes(f"the samples encoded before it are kept in {out}: the same command resumes from them"):
        fill_cache(samples, trunk, key, out, batch_size, workers, progress)
    return out


def fill_cache(samples: TrackingSamples, trunk, key: dict, out: Path, batch_size: int, workers: int,
               progress: bool) -> None:
    """``write_cache``'s work in the folder ``out``, which this process holds."""
    meta_path = out / META
    done, mode = 0, "w+"
    if meta_path.exists():
        meta = read_record(meta_path)
        if meta["key"] != key:
            raise ValueError(f"feature cache {out} holds other samples ({differences(meta['key'], key)}); choose "
                             "another folder")
        done, mode = meta["done"], "r+"
    n, length = samples.references + 1, len(samples)  # memory frames: the initial one and T references
    arrays = None if mode == "w+" else reserved(open_arrays(out, "r+", length))
    loader = DataLoader(samples, batch_size=batch_size, sampler=range(done, length), num_workers=workers)
    bar = tqdm(total=length, initial=done, disable=not progress, desc="feature cache", unit="sample")
    with torch.no_grad():
        for b, batch in enumerate(loader, 1):
            memory, query = trunk_outputs(batch, trunk, torch.device("cpu"))  # (B, N, Ct, H', W'), (B, Ct, H', W')
            if arrays is None:
                shape = (length, n + 1, *query.shape[1:])
                shapes = {"features": shape, "masks": (length, n, 4), "query_boxes": (length, 4),
                          "positive": (length,), "skipped": (length,)}
                need = sum(np.dtype(ARRAYS[name][0]).itemsize * int(np.prod(size)) for name, size in shapes.items())
                check_room(out, need)
                arrays = {}
                for name, size in shapes.items():
                    path = checked_target(out / f"{name}.npy")
                    with writing(path, kept=f"the cache needs {need:,} bytes in all"):  # e.g. a file-size limit
                        arrays[name] = open_memmap(path, "w+", ARRAYS[name][0], size)
                    reserved({name: arrays[name]})
            rows = slice(done, done + len(query))
            arrays["features"][rows] = torch.cat([memory, query[:, None]], 1).numpy()  # (B, N + 1, Ct, H', W')
            arrays["masks"][rows] = mask_rectangles(batch["memory_masks"])
            arrays["query_boxes"][rows] = batch["query_box"].numpy()
            arrays["positive"][rows] = batch["positive"].numpy()
            arrays["skipped"][rows] = batch["skipped"].numpy()
            done += len(query)
            bar.update(len(query))
            if b % FLUSH_EVERY == 0 or done == length:  # the data on disk before the count that promises it
                for array in arrays.values():
                    array.flush()
                write_record(meta_path, key, done, content_digest(arrays) if done == length else None)
    bar.close()
    if not meta_path.is_file():  # nothing was left to encode
        write_record(meta_path, key, done)


def check_room(folder: Path, need: int, held: int = 0) -> None:
    """``WriteError`` naming ``folder`` and the bytes when its disk has not ``need`` bytes free (``held``: those
    of its files already allocated): the arrays are written through memory maps, where a full disk is a bus error
    that kills the process, not an error."""
    free = shutil.disk_usage(folder).free
    if need - held > free:
        raise WriteError(f"feature cache folder {folder} needs {need:,} bytes and its disk has {free:,} free "
                         f"({(need - held - free) / 2**30:.2f} GiB short): free space, or choose another folder")


def reserved(arrays: dict[str, np.memmap]) -> dict[str, np.memmap]:
    """``arrays`` (memory maps of files) with every block of their files allocated (``posix_fallocate``), so that
    a full disk is an error here rather than a bus error at a write through the map."""
    for array in arrays.values():
        path = Path(array.filename)
        size = path.stat().st_size
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as err:
            if err.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system without it: its free space checked
                check_room(path.parent, size, held=path.stat().st_blocks * 512)
            else:
                raise WriteError(f"feature cache folder {path.parent}: cannot reserve {size:,} bytes for "
                                 f"{path.name} ({err.strerror}): free space, or choose another folder") from None
        finally:
            os.close(fd)
    return arrays


def write_record(path: Path, key: dict, done: int, content: str | None = None) -> None:
    """``cache.json``: the samples' key, the count written and, once complete, ``content_digest``."""
    write_text(path, json.dumps({"key": key, "done": done} | ({"content": content} if content else {}), indent=2))


SAMPLED_ROWS = 16  # rows of each array a content digest reads: another cache's file differs in every row


def content_digest(arrays: dict[str, np.ndarray]) -> str:
    """BLAKE2b (16 bytes, hex) over each array's dtype, shape and ``SAMPLED_ROWS`` rows spread over it: an array
    file of another cache (another seed's features copied in) changes it, for a few MB read of 9.5 GB."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        array = arrays[name]
        digest.update(f"{name} {array.dtype} {array.shape}".encode())
        for row in sorted(set(np.linspace(0, len(array) - 1, SAMPLED_ROWS).astype(int).tolist())):
            digest.update(np.ascontiguousarray(array[row]).tobytes())
    return digest.hexdigest()


def rebuild(path: Path, problem: str) -> ValueError:
    """The one-line error of a cache file that cannot be used: it names the file and says to build the cache anew."""
    return ValueError(f"feature cache file {path} {problem}: the cache is truncated or not one this tool wrote; "
                      f"delete {path.parent} and build it again (python -m stif_core cache)")


def read_record(path: Path) -> dict:
    """``cache.json``: an object with ``key`` (an object) and ``done`` (a count); ``ValueError`` naming it else."""
    meta = read_json(path, "feature cache record")
    if not (isinstance(meta, dict) and isinstance(meta.get("key"), dict) and type(meta.get("done")) is int
            and meta["done"] >= 0):
        raise rebuild(path, "is not an object of 'key' (an object) and 'done' (a count)")
    return meta


def open_arrays(folder: Path, mode: str, length: int) -> dict[str, np.ndarray]:
    """The cache's arrays as memory maps, each the dtype, dimensions and ``length`` that ``write_cache`` writes."""
    arrays = {}
    for name, (dtype, ndim) in ARRAYS.items():
        path = regular_file(folder / f"{name}.npy", "feature cache file")
        try:
            array = np.load(path, mmap_mode="r")  # read-only first: "r+" would extend a cut file with zeros
            if mode != "r":
                array = np.load(path, mmap_mode=mode)
        except (ValueError, OSError, EOFError) as err:
            raise rebuild(path, f"cannot be read ({err})") from None
        if not isinstance(array, np.ndarray) or array.dtype != dtype or array.ndim != ndim or len(array) != length:
            held = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
            raise rebuild(path, f"holds {held}, not {np.dtype(dtype)} of {ndim} dimensions for {length} samples")
        arrays[name] = array
    return arrays


def mask_rectangles(masks: torch.Tensor) -> np.ndarray:
    """Box masks (..., 1, S, S) -> their rectangles (..., 4) int16: columns x0:x1, rows y0:y1 (empty: 0, 0, 0, 0)."""
    cols, rows = masks.amax(-2)[..., 0, :] > 0, masks.amax(-1)[..., 0, :] > 0  # (..., S) each
    def span(on: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = on.float().argmax(-1)
        return torch.where(on.any(-1), first, 0), torch.where(on.any(-1), first + on.sum(-1), 0)
    (x0, x1), (y0, y1) = span(cols), span(rows)
    return torch.stack([x0, x1, y0, y1], -1).numpy().astype(np.int16)


def rectangle_masks(rectangles: np.ndarray, size: int) -> torch.Tensor:
    """``mask_rectangles``' inverse: (N, 4) -> (N, 1, S, S) float32."""
    masks = torch.zeros(len(rectangles), 1, size, size)
    for mask, (x0, x1, y0, y1) in zip(masks, rectangles.tolist()):
        mask[0, y0:y1, x0:x1] = 1
    return masks


class CachedSamples(Dataset):
    """The samples of a complete feature cache whose key is ``key``: item k holds ``memory_features``
    (N, Ct, H', W') and ``query_features`` (Ct, H', W') float32 in place of the crops, ``memory_masks``
    (N, 1, S, S), ``query_box`` (4,), ``positive`` and ``skipped`` (``TrackingSamples``' other keys)."""

    def __init__(self, folder: str | Path, key: dict):
        self.folder = Path(folder)
        meta = read_record(self.folder / META)
        if meta["key"] != key:
            raise ValueError(f"feature cache {self.folder} holds the samples of another run "
                             f"({differences(meta['key'], key)}); build one for this run: python -m stif_core cache")
        if meta["done"] < key["length"]:
            raise ValueError(f"feature cache {self.folder} is incomplete ({meta['done']} of {key['length']} "
                             "samples): run the same cache command again to finish it")
        self.arrays = open_arrays(self.folder, "r", key["length"])
        if meta.get("content") != content_digest(self.arrays):
            raise rebuild(self.folder / META, "does not describe the array files beside it (one was replaced or "
                                              "edited since the cache was built)")
        self.size = key["sampling"]["crop_size"]

    def __len__(self) -> int:
        return len(self.arrays["positive"])

    def __getitem__(self, k: int) -> dict:
        features = torch.from_numpy(self.arrays["features"][k].astype(np.float32))  # (N + 1, Ct, H', W')
        return {"memory_features": features[:-1], "query_features": features[-1],
                "memory_masks": rectangle_masks(self.arrays["masks"][k], self.size),  # (N, 1, S, S)
                "query_box": torch.from_numpy(np.array(self.arrays["query_boxes"][k])),
                "positive": torch.tensor(bool(self.arrays["positive"][k])),
                "skipped": torch.tensor(int(self.arrays["skipped"][k]))}
