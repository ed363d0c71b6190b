"""The trackers an evaluation runs (STIF checkpoints with their recorded set-up, OpenCV peers) and the sequences
it runs them on: the ``eval`` command's and Table 1's rows."""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import cv2

from ..checkpoint import load_model, read_metadata
from ..data.sequences import Sequence, load_sequences, load_split, open_dataset
from ..model.knockouts import knocked_out, knockouts_for
from ..paths import checkpoint_path
from ..tracking.baselines import BASELINES, make_baseline
from ..tracking.memory import DEFAULT_MEMORY_POLICY
from ..tracking.tracker import STIFTracker


def stif_trackers(checkpoints: list[str], params: str, policy: str, device: str, engine: str = "torch",
                  knockouts: str = "", search_size: int | None = None) -> tuple[dict, dict]:
    """(name -> factory, name -> signature) for STIF checkpoints. A row is ``stif-<variant>``, with the checkpoint's
    SHA-256 mark when two checkpoints of one variant run together, and every option that is not the default;
    ``knockouts`` (comma-separated, or "all") adds a row ``<row>-ko-<name>`` per knock-out and checkpoint."""
    paths = [checkpoint_path(c) for c in checkpoints]
    metadata = [read_metadata(p) for p in paths]
    variants = [m.get("variant", p.stem) for m, p in zip(metadata, paths)]
    repeated = {v for v, n in Counter(variants).items() if n > 1}
    factories, signatures = {}, {}
    for path, variant, meta in zip(paths, variants, metadata):
        model = load_model(path, device)  # a bad file fails here, before any tracking
        size = search_size if search_size not in (None, model.cfg.crop_size) else None
        STIFTracker(model, params, policy, engine=engine, search_size=size)  # a bad option fails here too
        sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        name = f"stif-{variant}" + (f"-{sha[:8]}" if variant in repeated else "")
        defaults = ((params, "otb"), (policy, DEFAULT_MEMORY_POLICY), (engine, "torch"))
        name += "".join(f"-{v}" for v, default in defaults if v != default) + (f"-s{size}" if size else "")
        if name in factories:
            raise ValueError(f"checkpoint {path} is given twice")
        signature = {"tracker": "stif", "variant": variant, "checkpoint_sha256": sha, "params": params,
                     "memory_policy": policy} | ({"engine": engine} if engine != "torch" else {}) | (
                     {"search_size": size} if size else {}) | trained_with(meta, path)
        names = knockouts_for(model) if knockouts == "all" else [k for k in knockouts.split(",") if k]
        if "all" in names:
            raise ValueError(f"--knockouts {knockouts!r}: 'all' stands alone (every knock-out of the variant)")
        if knockouts and not names:
            raise ValueError(f"--knockouts {knockouts!r} names no knock-out; valid: all, or {knockouts_for(model)}")
        for ko in [None, *names]:
            twin = model if ko is None else knocked_out(model, ko)  # an unknown name fails here
            row = name if ko is None else f"{name}-ko-{ko}"
            factories[row] = lambda m=twin, s=size: STIFTracker(m, params, policy, engine=engine, search_size=s)
            signatures[row] = signature | ({"knockout": ko} if ko else {})
    return factories, signatures


def trained_with(meta: dict[str, str], path: Path) -> dict:
    """The seed and the recipe's digest of a checkpoint (``train.recipe``), where its metadata records them;
    ``ValueError`` naming the file for a seed that is not a whole number."""
    if "seed" in meta and not (meta["seed"].isascii() and meta["seed"].isdigit()):
        raise ValueError(f"checkpoint {path}: metadata \"seed\" is {meta['seed'][:40]!r}, not a whole number of 0 "
                         "or more (train writes one); the file was edited or not written by this tool")
    seed = {"seed": int(meta["seed"])} if "seed" in meta else {}
    return seed | ({"recipe": hashlib.sha256(meta["recipe"].encode()).hexdigest()[:12]} if "recipe" in meta else {})


def trained_on(checkpoints: list[str], sequences: list[Sequence]) -> list[str]:
    """A line for each checkpoint whose metadata lists some of ``sequences`` among its training sequences: its
    scores there are not held-out."""
    from ..files import parse_json

    lines = []
    for c in checkpoints:
        try:
            data = parse_json(read_metadata(checkpoint_path(c)).get("data", "{}"), c)
        except ValueError:
            data = {}
        seen = sorted({s.name for s in sequences} & set(data.get("sequences", []) if isinstance(data, dict) else []))
        if seen:
            lines.append(f"note: {c} was trained on {len(seen)} of the sequences scored here ({', '.join(seen[:5])}"
                         f"{' ...' if len(seen) > 5 else ''}): its scores on them are not held-out")
    return lines


def baseline_trackers(baselines: list[str]) -> tuple[dict, dict]:
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; valid: {sorted(BASELINES)}")
    return ({b: lambda b=b: make_baseline(b) for b in baselines},
            {b: {"tracker": b, "opencv": cv2.__version__} for b in baselines})


def dataset_sequences(root: Path, layout: str, split: str | None, names: list[str] | None) -> list[Sequence]:
    """The sequences to evaluate: by split or names, in this project's OTB folder or another layout's."""
    if layout == "otb":
        return load_sequences(load_split(split, root) if split else names, root)
    sequences = open_dataset(root, layout, split)
    if not names:
        return sequences
    by_name = {s.name: s for s in sequences}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown sequence(s) {unknown} in {root} ({layout}); available: {sorted(by_name)[:20]}"
                         + (" ..." if len(by_name) > 20 else ""))
    return [by_name[n] for n in names]
