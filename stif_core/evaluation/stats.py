"""How sure a benchmark score is: percentile-bootstrap intervals over sequences, and paired comparisons of two
trackers on the same sequences. With 9 val videos the spread between videos, not the number of frames, decides
whether two trackers differ; resampling whole sequences is what measures it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 10_000


@dataclass(frozen=True)
class Interval:
    """A mean over sequences with its bootstrap interval at ``level``."""

    mean: float
    low: float
    high: float
    level: float = 0.95

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_means(values: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """Means of ``resamples`` resamples of the sequences (rows of ``values``, drawn with replacement):
    values (S,) -> (R,)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
        raise ValueError(f"bootstrap needs a non-empty 1-D array of finite per-sequence scores, got {values!r}")
    rows = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))  # (R, S)
    return values[rows].mean(1)


def interval(values: np.ndarray, level: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """The mean of per-sequence scores and its percentile-bootstrap interval; no interval (NaN bounds, which
    exclude nothing) from a single sequence, whose resamples are all the same value."""
    means = bootstrap_means(values, resamples, seed)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail]) if np.size(values) > 1 else (np.nan, np.nan)
    return Interval(float(np.mean(values)), float(low), float(high), level)


@dataclass(frozen=True)
class Paired:
    """Tracker A against tracker B on the same sequences: the mean difference A - B with its interval, and on
    how many sequences A is ahead, behind or level (within ``tie``)."""

    difference: Interval
    ahead: int
    behind: int
    level: int

    @property
    def resolved(self) -> bool:
        """The interval of the difference excludes zero."""
        return self.difference.excludes_zero()


def paired(a: np.ndarray, b: np.ndarray, tie: float = 1e-3, level: float = 0.95, resamples: int = RESAMPLES,
           seed: int = 0) -> Paired:
    """Compare per-sequence scores ``a`` and ``b`` (same sequences, same order): the bootstrap resamples
    sequences, keeping each sequence's pair together."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores must cover the same sequences: shapes {a.shape} and {b.shape}")
    d = a - b  # (S,)
    return Paired(interval(d, level, resamples, seed), int((d > tie).sum()), int((d < -tie).sum()),
                  int((np.abs(d) <= tie).sum()))


def per_sequence(report: dict, key: str, sequences: list[str]) -> np.ndarray:
    """One score of a tracker's ``evaluate`` report, per sequence in the given order: (S,)."""
    rows = report["per_sequence"]
    missing = [s for s in sequences if s not in rows]
    if missing:
        raise ValueError(f"the report has no result for sequence(s) {missing}")
    return np.array([rows[s][key] for s in sequences])
