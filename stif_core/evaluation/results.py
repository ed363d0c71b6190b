"""Result files in the formats official tools and evaluation servers read, written atomically."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_text(path: Path, text: str) -> None:
    """Write to a temporary file, then rename: an interrupted run never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def format_rows(rows: np.ndarray, fmt: str) -> str:
    return "".join(",".join(fmt % v for v in np.atleast_1d(r)) + "\n" for r in rows)


def write_otb(folder: Path, name: str, boxes: np.ndarray, times: np.ndarray) -> None:
    """OTB toolkit layout: ``<name>.txt`` (x,y,w,h per line) and ``times/<name>_time.txt`` (seconds)."""
    write_text(Path(folder) / f"{name}.txt", format_rows(boxes, "%.3f"))
    write_text(Path(folder) / "times" / f"{name}_time.txt", format_rows(times, "%.8f"))


def write_got10k(folder: Path, name: str, boxes: np.ndarray, times: np.ndarray) -> None:
    """GOT-10k layout: ``<name>/<name>_001.txt`` boxes and ``<name>/<name>_time.txt`` seconds per frame."""
    write_text(Path(folder) / name / f"{name}_001.txt", format_rows(boxes, "%.3f"))
    write_text(Path(folder) / name / f"{name}_time.txt", format_rows(times, "%.8f"))


def read_otb(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (L, 4) and seconds per frame (L,) written by ``write_otb``."""
    boxes = np.loadtxt(Path(folder) / f"{name}.txt", delimiter=",", ndmin=2)
    times = np.loadtxt(Path(folder) / "times" / f"{name}_time.txt", ndmin=1)
    return boxes, times
