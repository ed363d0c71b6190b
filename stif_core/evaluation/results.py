"""Result files in the layouts the official toolkits and evaluation servers read, written atomically.

OTB (``ExperimentOTB``): ``<folder>/<name>.txt`` and ``<folder>/times/<name>_time.txt``. GOT-10k
(``ExperimentGOT10k``, server): ``<folder>/<name>/<name>_001.txt`` and ``<folder>/<name>/<name>_time.txt``.
Boxes are "x,y,w,h" lines, times one number of seconds per line. Numbers are written in their shortest exact
form, so reading a file back gives the very floats that were scored. The boxes file is written last: where it
exists, the result is complete. The scores of an ``eval`` run are in ``metrics.json`` (tracker -> overall,
per_sequence, curves).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..files import read_json, read_text, write_text
from ..options import is_number


def format_rows(rows: np.ndarray) -> str:
    """(L, K) or (L,) numbers -> L comma-separated lines, each number exact (``repr`` of the float)."""
    return "".join(",".join(repr(float(v)) for v in np.atleast_1d(r)) + "\n" for r in rows)


def read_rows(path: Path, columns: int) -> np.ndarray:
    """(L, columns) float64 from comma-separated lines ((L,) when one column)."""
    lines = read_text(path, "result file").splitlines()
    try:
        rows = np.loadtxt(lines, delimiter=",", ndmin=2)  # (L, columns)
    except ValueError as err:
        raise ValueError(f"result file {path}: {err}") from None
    if rows.shape[1] != columns:
        raise ValueError(f"{path}: {rows.shape[1]} numbers per line, expected {columns}")
    return rows[:, 0] if columns == 1 else rows


def otb_paths(folder: Path, name: str) -> tuple[Path, Path]:
    """(boxes file, times file) of the OTB layout."""
    return Path(folder) / f"{name}.txt", Path(folder) / "times" / f"{name}_time.txt"


def got10k_paths(folder: Path, name: str, repetition: int = 1) -> tuple[Path, Path]:
    """(boxes file, times file) of the GOT-10k layout."""
    return Path(folder) / name / f"{name}_{repetition:03d}.txt", Path(folder) / name / f"{name}_time.txt"


def write_result(paths: tuple[Path, Path], boxes: np.ndarray, times: np.ndarray) -> None:
    """Boxes (L, 4) and seconds per frame (L,); the times first, so the boxes file marks a complete result."""
    boxes, times = np.asarray(boxes, np.float64), np.asarray(times, np.float64)
    if boxes.shape != (len(times), 4):
        raise ValueError(f"boxes of shape {boxes.shape} for {len(times)} frame times")
    write_text(paths[1], format_rows(times))
    write_text(paths[0], format_rows(boxes))


def read_result(paths: tuple[Path, Path]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (L, 4) and seconds per frame (L,)."""
    boxes, times = read_rows(paths[0], 4), read_rows(paths[1], 1)
    if len(boxes) != len(times):
        raise ValueError(f"{paths[0]} holds {len(boxes)} boxes but {paths[1]} {len(times)} times")
    for path, rows in zip(paths, (boxes, times)):
        bad = np.flatnonzero(~np.isfinite(rows.reshape(len(rows), -1)).all(1))
        if bad.size:
            raise ValueError(f"result file {path}, line {bad[0] + 1}: not finite numbers (NaN or infinity); no "
                             "tracker's result holds them")
    return boxes, times


def write_otb(folder: Path, name: str, boxes: np.ndarray, times: np.ndarray) -> None:
    write_result(otb_paths(folder, name), boxes, times)


def read_otb(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    return read_result(otb_paths(folder, name))


def write_got10k(folder: Path, name: str, boxes: np.ndarray, times: np.ndarray) -> None:
    write_result(got10k_paths(folder, name), boxes, times)


def read_got10k(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    return read_result(got10k_paths(folder, name))


# metrics.json holds about 230 bytes per row and sequence (the 9 val sequences, 6 rows: 40 KB) and 2.5 KB of
# curves per row: GOT-10k's 9,335 training sequences scored by 100 rows would be 215 MB
MAX_METRICS_BYTES = 256 * 2**20
SHARES = ("auc", "prec20", "norm_prec", "ao", "sr50", "sr75")  # scores that are shares of frames, in [0, 1]


def row_problem(row) -> str | None:
    """What makes ``row`` not a row of ``metrics.json`` (None: nothing)."""
    if not isinstance(row, dict):
        return f"is {type(row).__name__}, not an object of overall, per_sequence"
    if not isinstance(row.get("per_sequence"), dict):
        return "'per_sequence' is missing or not an object of sequence -> scores"
    for sequence, scores in row["per_sequence"].items():
        if not isinstance(scores, dict):
            return f"per_sequence {sequence!r} is {type(scores).__name__}, not an object of scores"
        wrong = [k for k, v in scores.items() if not (isinstance(v, str) if k == "data" else is_number(v))]
        if wrong:
            return f"per_sequence {sequence!r}: {wrong[0]} is {scores[wrong[0]]!r}, not a " + (
                "string" if wrong[0] == "data" else "finite number")
        outside = [k for k in SHARES if k in scores and not 0 <= scores[k] <= 1]
        if outside:
            return f"per_sequence {sequence!r}: {outside[0]} is {scores[outside[0]]!r}, not a share in [0, 1]"
    overall = row.get("overall", {})
    if not isinstance(overall, dict) or not all(is_number(v) for v in overall.values()):
        return "'overall' is not an object of scores (finite numbers)"
    if not isinstance(row.get("setup", {}), dict):
        return "'setup' is not an object"
    return None


def read_metrics(path: str | Path, allow_empty: bool = False) -> dict:
    """The rows of an ``eval`` run's ``metrics.json`` (tracker -> overall, per_sequence), each checked."""
    rows = read_json(path, "metrics file", MAX_METRICS_BYTES)
    if not isinstance(rows, dict):
        raise ValueError(f"metrics file {path} is not an eval metrics file (an object of tracker -> overall, "
                         "per_sequence); `python -m stif_core eval` writes one")
    for name, row in rows.items():
        problem = row_problem(row)
        if problem:
            raise ValueError(f"metrics file {path}, row {name!r}: {problem}; `python -m stif_core eval` writes "
                             "these rows")
    if not rows and not allow_empty:
        raise ValueError(f"metrics file {path} holds no tracker's row")
    return rows


def pooled_rows(runs: list[dict]) -> dict:
    """The rows of eval runs over disjoint sequences (cross-validation's held-out folds) as one run's: each
    tracker's per-sequence scores united, its overall AUC their mean; ``ValueError`` for a sequence in two runs."""
    rows: dict[str, dict] = {}
    for run in runs:
        for name, row in run.items():
            pooled = rows.setdefault(name, {"per_sequence": {}})["per_sequence"]
            twice = sorted(set(pooled) & set(row["per_sequence"]))
            if twice:
                raise ValueError(f"sequence(s) {twice[:3]} scored in two folds: the folds must not overlap")
            pooled.update(row["per_sequence"])
    for row in rows.values():
        row["overall"] = {"auc": sum(s["auc"] for s in row["per_sequence"].values()) / len(row["per_sequence"])}
    return rows
