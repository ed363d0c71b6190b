"""Run trackers over sequences, write result files and ``metrics.json``. Sequences already tracked (their
complete result files exist) are read back instead of tracked again, so an interrupted run resumes where it
stopped and loses nothing. Each tracker's folder records what produced its results (``run.json``: checkpoint
hash, tracker parameters, memory policy); results of anything else are refused, never reported as this run's.
Each result also records the data it was computed on (``data/<sequence>.txt``: ``Sequence.fingerprint``), the
digest of its files and that of the set-up that produced it; a result of other data under the same sequence name,
one whose files were edited since, or one copied from another tracker's folder, is tracked again, and every row of
``metrics.json`` carries
the fingerprint of each sequence, so that ``compare`` pairs only scores of the same data. Sequences without
ground truth after their first frame (a test split) are refused for scoring: their results are written for an
evaluation server instead (``score=False``)."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from ..data.digests import FrameDigests, file_digest
from ..data.sequences import Sequence
from ..files import check_name, checked_target, discard, output_folder, read_json, write_text
from ..tracking.protocol import TrackerFailure
from .metrics import KEYS, evaluate_sequence, summarize, visible_frames
from .results import otb_paths, read_metrics, read_otb, write_got10k, write_otb
from .tre import base_name, pool_segments, segments, shortfall, starts_record, starts_used


def track_sequence(tracker, seq: Sequence, progress: bool = True, on_frame: Callable | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (L, 4) x, y, w, h and seconds per frame (L,), frame decoding included; ``on_frame(i, result)``
    sees every later frame's result."""
    boxes = np.repeat(seq.boxes[:1], len(seq), axis=0)  # (L, 4); a failed tracker keeps its last box
    times = np.zeros(len(seq))  # (L,)
    i = 0
    try:
        t0 = time.perf_counter()
        tracker.init(seq.frame(0), seq.boxes[0])
        times[0] = time.perf_counter() - t0
        for i in tqdm(range(1, len(seq)), desc=seq.name, disable=not progress, leave=False):
            t0 = time.perf_counter()
            result = tracker.update(seq.frame(i))
            times[i] = time.perf_counter() - t0
            boxes[i] = result.box
            if on_frame is not None:
                on_frame(i, result)
    except TrackerFailure as err:
        boxes[i:] = boxes[max(i - 1, 0)]
        print(f"{seq.name}, frame {i}: {err}; its last box is kept for frames {i}-{len(seq) - 1}")
    return boxes, times


def fps(times: np.ndarray) -> float:
    """Frames per second over the tracked frames (not the initialisation, nor frames after a tracker's failure)."""
    tracked = times[1:][times[1:] > 0]
    return float(len(tracked) / max(tracked.sum(), 1e-9))


def hidden_frames(seq: Sequence) -> np.ndarray | None:
    """(L,) True where the target is marked absent or, for GOT-10k, its cover label is 0 (the toolkit's rule)."""
    cover = seq.attributes.get("cover")
    if cover is None:
        return seq.absent
    hidden = np.asarray(cover) == 0  # (L,)
    return hidden if seq.absent is None else hidden | seq.absent


def check_out_dir(out: Path, sequences: list[Sequence]) -> None:
    """``ValueError`` when ``out`` lies inside the folder holding a sequence's frame folder (the data)."""
    for seq in sequences:
        if isinstance(seq.frames, np.ndarray) or not len(seq):
            continue
        data = Path(seq.frames[0]).resolve().parent.parent
        if out == data or data in out.parents:
            raise ValueError(f"output folder {out} lies inside the data folder {data}; results are never written there")


def claim_folder(folder: Path, signature: dict) -> None:
    """Record in ``folder/run.json`` what produces its results; ``ValueError`` when the folder already holds
    results of something else (another checkpoint, other parameters) or of an unrecorded run."""
    record = folder / "run.json"
    if record.exists():
        stored = read_json(record, "tracker record")
        if stored != signature:
            changed = sorted(k for k in stored.keys() | signature.keys() if stored.get(k) != signature.get(k))
            was, asked = ({k: d.get(k) for k in changed} for d in (stored, signature))
            raise ValueError(f"{folder} holds results of another tracker set-up (stored {was}, this run {asked}); "
                             "choose another output folder, or delete that one to track again")
    elif (folder / "otb").exists():
        raise ValueError(f"{folder} holds results without a record of what produced them; choose another output "
                         "folder, or delete that one to track again")
    else:
        write_text(record, json.dumps(signature, indent=2, sort_keys=True))


def unscorable(sequences: list[Sequence]) -> list[str]:
    """Names of the sequences with no visible ground-truth box after the first frame: nothing to score against."""
    return [s.name for s in sequences if not visible_frames(s.boxes, hidden_frames(s))[1:].any()]


def result_digest(folder: Path, name: str) -> str:
    """The digest of a sequence's OTB result files (boxes, then times) as they are now."""
    return "-".join(file_digest(p) for p in otb_paths(folder / "otb", name))


def result_record(folder: Path, name: str) -> Path:
    """Where a result records its data's fingerprint and its files' digest, one a line."""
    return folder / "data" / f"{name}.txt"


def setup_digest(signature: dict) -> str:
    """A short digest of what produces a tracker's results (its ``run.json``), recorded beside each result."""
    return hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:16]


def recorded(folder: Path, name: str) -> list[str]:
    """A result's record: [fingerprint, digest, set-up digest] ([] when there is none; fewer items when written
    by an earlier version)."""
    record = result_record(folder, name)
    return record.read_text().split() if record.is_file() else []


def load_or_track(factory: Callable[[], object], seq: Sequence, folder: Path, progress: bool, data: str,
                  setup: str) -> tuple[np.ndarray, np.ndarray]:
    """A sequence's boxes and times: read back when ``folder/otb`` holds a complete result for it, computed on the
    same data (``data``, its fingerprint) by the same set-up (``setup``: ``setup_digest``) and unchanged since it
    was written (the digest of its files), else tracked by a fresh tracker and written in both layouts."""
    try:
        boxes, times = read_otb(folder / "otb", seq.name)
    except (OSError, ValueError) as err:  # missing, or cut short by an interruption, or not a result of ours
        boxes = None
        if otb_paths(folder / "otb", seq.name)[0].is_file():  # complete, as written, but unreadable: said so
            print(f"{folder.name}/{seq.name}: the stored result cannot be used ({err}); tracking again")
    if boxes is not None:
        stored, files = recorded(folder, seq.name), result_digest(folder, seq.name)
        if stored == [data, files, setup] and len(boxes) == len(seq):
            return boxes, times
        if stored[:2] == [data, files] and len(boxes) == len(seq):
            print(f"{folder.name}/{seq.name}: the stored result was produced by another tracker set-up than this "
                  f"folder's run.json (or by an earlier version); tracking again")
        elif stored[:1] == [data] and len(boxes) == len(seq):
            print(f"{folder.name}/{seq.name}: the stored result's files changed since they were written (or were "
                  "written by an earlier version); tracking again")
        else:
            why = ("it records no data fingerprint" if not stored else
                   "its frames or ground truth differ from this run's" if stored[0] != data else
                   f"it has {len(boxes)} frames, this run {len(seq)}")
            print(f"{folder.name}/{seq.name}: the stored result was computed on other data ({why}); tracking again")
        discard(otb_paths(folder / "otb", seq.name)[0])  # incomplete until this run's result replaces it
    boxes, times = track_sequence(factory(), seq, progress)
    write_got10k(folder / "got10k", seq.name, boxes, times)
    write_otb(folder / "otb", seq.name, boxes, times)
    write_text(result_record(folder, seq.name), f"{data}\n{result_digest(folder, seq.name)}\n{setup}\n")
    return boxes, times


def evaluate_tracker(factory: Callable[[], object], sequences: list[Sequence], folder: Path, progress: bool,
                     prints: dict[str, str], signature: dict, score: bool = True, segmented: bool = False) -> dict:
    """``summarize``'s report for one tracker (``signature``: what produces its results), with ``fps`` and the
    data's fingerprint per sequence and ``fps`` overall; ``score=False``: the result files only. ``segmented``: the
    sequences are TRE segments, scored pooled per sequence, each with its first segment's fingerprint and
    ``starts_used``."""
    per_seq, seq_times, setup = {}, {}, setup_digest(signature)
    for seq in tqdm(sequences, desc=folder.name, disable=not progress):
        boxes, times = load_or_track(factory, seq, folder, progress, prints[seq.name], setup)
        if score:
            h, w = seq.first_size()
            per_seq[seq.name] = evaluate_sequence(boxes, seq.boxes, (w, h), hidden_frames(seq))
        seq_times[seq.name] = times
    if not score:
        return {}
    names: dict[str, list[str]] = {}  # segmented: sequence -> its segments
    if segmented:
        per_seq = pool_segments(per_seq)
        for name in seq_times:
            names.setdefault(base_name(name), []).append(name)
        seq_times = {base: np.concatenate([seq_times[n] for n in parts]) for base, parts in names.items()}
        prints = {base: prints[parts[0]] for base, parts in names.items()}
    report = summarize(per_seq)
    for name, times in seq_times.items():
        report["per_sequence"][name] |= {"fps": fps(times), "data": prints[name]}
        report["per_sequence"][name] |= {"starts_used": len(names[name])} if segmented else {}
    report["overall"]["fps"] = fps(np.concatenate([[0.0]] + [t[1:] for t in seq_times.values()]))
    return report


def evaluate(trackers: dict[str, Callable[[], object]], sequences: list[Sequence], out_dir: str | Path,
             progress: bool = True, signatures: dict[str, dict] | None = None, score: bool = True,
             starts: int = 1) -> dict:
    """Track every sequence with every tracker (a fresh one per sequence, from its factory); results under
    ``out_dir/<tracker>/{otb,got10k}/`` and the scores in ``out_dir/metrics.json``, updated after each tracker
    (rows of earlier runs kept); returns this run's rows. ``signatures[name]``: what produces a tracker's results
    (``claim_folder``). ``score=False``: result files only, for a server. ``starts`` > 1: OTB's temporal
    robustness evaluation (``tre``), each row then ``<tracker>-tre<starts>``."""
    if not sequences:
        raise ValueError("no sequences to evaluate (a data root of another layout than OTB's reads as empty: "
                         "--layout auto, got10k, lasot or trackingnet)")
    for name in [*trackers, *(s.name for s in sequences)]:
        check_name(name, "tracker or sequence name")
    blind = unscorable(sequences) if score else []
    if blind:
        raise ValueError(f"{len(blind)} sequence(s) have no ground truth after their first frame, so there is "
                         f"nothing to score them against: {blind[:5]}{' ...' if len(blind) > 5 else ''}. A test "
                         "split's annotation is withheld: track it with --results-only and submit the files of "
                         "<out>/<tracker>/got10k to the benchmark's evaluation server")
    if starts < 1:
        raise ValueError(f"starts={starts}: give at least 1 (1 is one-pass evaluation)")
    signatures = {n: (signatures or {}).get(n, {"tracker": n}) for n in trackers}
    if starts > 1:
        signatures = {f"{n}-tre{starts}": signatures[n] | {"starts": starts} for n in trackers}
        trackers = {f"{n}-tre{starts}": f for n, f in trackers.items()}
        sequences = segments(sequences, starts, hidden_frames)
        fewer = shortfall(starts, starts_used([s.name for s in sequences]))
        if fewer:
            print(fewer)
    check_out_dir(Path(out_dir).resolve(), sequences)
    with output_folder(out_dir, "eval") as out:
        return track_and_score(trackers, sequences, out, progress, signatures, score, starts)


def track_and_score(trackers: dict[str, Callable[[], object]], sequences: list[Sequence], out: Path, progress: bool,
                    signatures: dict[str, dict], score: bool, starts: int) -> dict:
    """``evaluate``'s work in the output folder ``out``, which this process holds."""
    metrics = out / "metrics.json"
    if score:
        checked_target(metrics)  # a planted link or a file the tools did not write: refused before any reading
    stored = read_metrics(metrics, allow_empty=True) if metrics.exists() and score else {}
    for name in trackers:  # every folder checked before any tracking starts
        claim_folder(out / name, signatures[name])
    digests = FrameDigests(out / "frame-digests.json")  # frames read once, then only when they change
    prints = {seq.name: seq.fingerprint(digests) for seq in sequences}  # once, for every tracker
    digests.save()
    report = {}
    for name, factory in trackers.items():
        report[name] = evaluate_tracker(factory, sequences, out / name, progress, prints, signatures[name], score,
                                        starts > 1)
        if score:
            report[name]["setup"] = signatures[name]
            if starts > 1:
                used = {s: e["starts_used"] for s, e in report[name]["per_sequence"].items()}
                report[name] |= starts_record(starts, used)
            write_text(metrics, json.dumps(stored | report, indent=2))
    return report if score else {}


def format_table(report: dict) -> str:
    """The overall scores, one line per tracker."""
    lines = [f"{'tracker':<16}" + "".join(f"{k:>10}" for k in (*KEYS, "fps"))]
    for name, r in report.items():
        lines.append(f"{name:<16}" + "".join(f"{r['overall'][k]:>10.3f}" for k in (*KEYS, "fps")))
    return "\n".join(lines)
