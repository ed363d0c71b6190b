"""The training logs of the shipped runs, one compressed file per run: ``data/training_logs/<seed>.jsonl.gz``.

A run of ``train`` writes two JSONL logs into its folder: ``log.jsonl`` (one row per step) and ``validation.jsonl``
(one row per checkpoint). The stored form keeps both in one gzip-compressed JSONL file: a first line naming the
run and, for each part, its row count and the SHA-256 of its text, then the rows of ``log`` and those of
``validation`` exactly as the run wrote them (``zcat`` shows them). ``read_training_logs`` reads either form;
``store_training_logs`` copies a run's folder into the stored form."""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

from ..files import read_text, regular_file, write_bytes
from ..paths import project_dir

PARTS = ("log", "validation")  # log.jsonl: a row per step; validation.jsonl: a row per checkpoint
SUFFIX = ".jsonl.gz"
FORMAT = "stif_core training logs"


def stored_training_logs(run: str) -> Path:
    """Where a shipped run's logs are stored: ``<project>/data/training_logs/<run>.jsonl.gz``."""
    return project_dir() / "data" / "training_logs" / f"{run}{SUFFIX}"


def part_lines(text: str, where: str) -> list[str]:
    """The rows of one JSONL log's text, each checked to be a JSON object; blank lines are left out."""
    lines = [line for line in text.split("\n") if line.strip()]
    for n, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            raise ValueError(f"{where}, row {n}: not a JSON object")
    return lines


def digest(lines: list[str]) -> str:
    return hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()


def pack_training_logs(run: str, parts: dict[str, str]) -> bytes:
    """The stored form of one run from the text of its JSONL logs (``{"log": ..., "validation": ...}``; a part
    not given is stored empty): gzip (level 9, no time stamp, so the same logs give the same bytes)."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown log part(s) {sorted(unknown)}; the parts are {list(PARTS)}")
    lines = {p: part_lines(parts.get(p, ""), f"{run} {p}") for p in PARTS}
    header = {"format": FORMAT, "run": run,
              "parts": {p: {"rows": len(lines[p]), "sha256": digest(lines[p])} for p in PARTS}}
    text = "".join(line + "\n" for line in [json.dumps(header), *lines["log"], *lines["validation"]])
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def unpack_training_logs(path: Path) -> dict[str, list[str]]:
    """The rows' text of each part of a stored file, checked against its first line's counts and digests;
    ``ValueError`` naming the file otherwise."""
    data = regular_file(path, "training logs").read_bytes()  # FileNotFoundError when missing
    try:
        text = gzip.decompress(data).decode()
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise ValueError(f"training logs {path}: not a gzip-compressed UTF-8 file ({err})") from None
    header, *rows = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    try:
        head = json.loads(header)
        counts = [head["parts"][p]["rows"] for p in PARTS]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ValueError(f"training logs {path}: the first line is not a header of {FORMAT!r}") from None
    if sum(counts) != len(rows):
        raise ValueError(f"training logs {path}: {len(rows)} rows, the header counts {sum(counts)}")
    out, start = {}, 0
    for p, n in zip(PARTS, counts):
        out[p], start = rows[start:start + n], start + n
        if digest(out[p]) != head["parts"][p]["sha256"]:
            raise ValueError(f"training logs {path}: the {p} rows do not match the header's SHA-256")
    return out


def read_training_logs(source: str | Path) -> dict[str, list[dict]]:
    """A training run's rows, ``{"log": [a row per step], "validation": [a row per checkpoint]}``, from ``source``:
    a shipped run's name (``stif_lite_full_s2``), a stored ``.jsonl.gz`` file, or a run's folder as ``train``
    writes it."""
    path = Path(source)
    if path.is_dir():
        found = {p: path / f"{p}.jsonl" for p in PARTS}
        if not any(f.exists() for f in found.values()):
            raise FileNotFoundError(f"run folder {path} holds neither log.jsonl nor validation.jsonl")
        lines = {p: part_lines(read_text(f, "training log"), str(f)) if f.exists() else [] for p, f in found.items()}
    else:
        if not path.name.endswith(SUFFIX) and len(path.parts) == 1:
            path = stored_training_logs(path.name)
        lines = unpack_training_logs(path)
    return {p: [json.loads(line) for line in rows] for p, rows in lines.items()}


def store_training_logs(run_folder: str | Path, run: str, dest: str | Path | None = None) -> Path:
    """Copy a run's logs (``runs/seeds/full_s0``: ``log.jsonl`` and ``validation.jsonl``) into their stored form,
    ``dest`` or ``stored_training_logs(run)``, read back and checked before this returns."""
    folder = Path(run_folder)
    parts = {p: read_text(folder / f"{p}.jsonl", "training log") for p in PARTS if (folder / f"{p}.jsonl").exists()}
    if not parts:
        raise FileNotFoundError(f"run folder {folder} holds neither log.jsonl nor validation.jsonl")
    target = Path(dest) if dest is not None else stored_training_logs(run)
    write_bytes(target, pack_training_logs(run, parts))
    if read_training_logs(target) != read_training_logs(folder):
        raise AssertionError(f"{target}: the rows read back differ from {folder}'s")
    return target
