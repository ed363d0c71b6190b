"""How sure a benchmark score is: percentile-bootstrap intervals over sequences (and over training seeds, when a
row has several), and paired comparisons of two trackers on the same sequences. With 9 val videos the spread
between videos, not the number of frames, decides whether two trackers differ; resampling whole sequences is
what measures it. One training seed is one draw of the training's luck; resampling seeds within a row adds that
spread to the interval."""
from __future__ import annotations

import math
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


def grid(values: np.ndarray) -> np.ndarray:
    """Per-sequence scores as (K, S): one row per training seed (a 1-D array is one seed)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[None] if values.ndim == 1 else values
    if values.ndim != 2 or values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"bootstrap needs finite per-sequence scores, (S,) or (seeds, S), got {values!r}")
    return values


def sequence_draws(count: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(R, S) indices of ``resamples`` resamples of ``count`` sequences, drawn with replacement."""
    return np.random.default_rng(seed).integers(0, count, size=(resamples, count))


def bootstrap_means(values: np.ndarray, resamples: int = RESAMPLES, seed: int = 0,
                    sequences: np.ndarray | None = None, stream: int = 1) -> np.ndarray:
    """Means of ``resamples`` resamples: values (S,) or (K seeds, S) -> (R,). Each resample draws the sequences
    (``sequences``: (R, S) draws shared with another row, for paired differences) and the seeds (from the random
    stream ``seed + stream``) with replacement."""
    values = grid(values)
    k, s = values.shape
    rows = sequence_draws(s, resamples, seed) if sequences is None else sequences  # (R, S)
    seeds = np.random.default_rng(seed + stream).integers(0, k, size=(len(rows), k))  # (R, K)
    return values[seeds[:, :, None], rows[:, None, :]].mean((1, 2))


def interval_of(means: np.ndarray, mean: float, count: int, level: float) -> Interval:
    """The percentile interval of bootstrap ``means``; none (NaN bounds) from a single sequence."""
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail]) if count > 1 else (np.nan, np.nan)
    return Interval(float(mean), float(low), float(high), level)


def interval(values: np.ndarray, level: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """The mean of per-sequence scores, (S,) or (K seeds, S), and its percentile-bootstrap interval."""
    values = grid(values)
    return interval_of(bootstrap_means(values, resamples, seed), values.mean(), values.shape[1], level)


def seed_spread(values: np.ndarray) -> float:
    """The standard deviation over seeds of each seed's mean over sequences (NaN with one seed)."""
    values = grid(values)
    return float(values.mean(1).std(ddof=1)) if len(values) > 1 else float("nan")


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
           seed: int = 0, same_seeds: bool = False) -> Paired:
    """Compare per-sequence scores ``a`` and ``b``, each (S,) or (seeds, S), on the same sequences: the bootstrap
    keeps each sequence's pair together. ``same_seeds``: row k of ``a`` and of ``b`` come from one training run (a
    model and its knock-out), so each resample draws one set of seeds for both and the training's luck cancels."""
    a, b = grid(a), grid(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired scores must cover the same sequences: shapes {a.shape} and {b.shape}")
    if same_seeds and a.shape[0] != b.shape[0]:
        raise ValueError(f"same_seeds pairs seed k with seed k: {a.shape[0]} and {b.shape[0]} seeds")
    rows = sequence_draws(a.shape[1], resamples, seed)
    means = bootstrap_means(a, sequences=rows, seed=seed) - bootstrap_means(b, sequences=rows, seed=seed,
                                                                            stream=1 if same_seeds else 2)
    d = a.mean(0) - b.mean(0)  # (S,)
    return Paired(interval_of(means, d.mean(), len(d), level), int((d > tie).sum()), int((d < -tie).sum()),
                  int((np.abs(d) <= tie).sum()))


def per_sequence(report: dict, key: str, sequences: list[str]) -> np.ndarray:
    """One score of a tracker's ``evaluate`` report, per sequence in the given order: (S,)."""
    rows = report["per_sequence"]
    missing = [s for s in sequences if s not in rows]
    if missing:
        raise ValueError(f"the report has no result for sequence(s) {missing}")
    return np.array([rows[s][key] for s in sequences])


# A 95% interval that excludes zero with 80% power: z(0.975) + z(0.80), the normal approximation (optimistic when
# the seed part dominates and a row has few seeds: its variance is then known to few degrees of freedom).
Z_RESOLVE = 1.959964 + 0.841621


@dataclass(frozen=True)
class Components:
    """The variance of a paired difference between two rows, split by where it comes from: the training seeds, the
    sequences, and what is left (the seed-by-sequence interaction, the starts and the frames within it)."""

    seed: float
    sequence: float
    residual: float

    def variance(self, seeds: int, sequences: int) -> float:
        """The variance of the mean difference over ``seeds`` x ``sequences``."""
        return self.seed / seeds + self.sequence / sequences + self.residual / (seeds * sequences)

    def resolvable(self, seeds: int, sequences: int, z: float = Z_RESOLVE) -> float:
        """The smallest true difference that ``seeds`` x ``sequences`` resolve at 95% with 80% power."""
        return z * math.sqrt(self.variance(seeds, sequences))

    def sequences_needed(self, difference: float, seeds: int, z: float = Z_RESOLVE) -> float:
        """The sequences that resolve ``difference`` with ``seeds`` (inf: the seeds' share alone is too wide)."""
        room = (difference / z) ** 2 - self.seed / seeds
        return math.inf if room <= 0 else math.ceil((self.sequence + self.residual / seeds) / room)


def components(differences: np.ndarray) -> Components:
    """Variance components of per-seed, per-sequence differences (seeds, S), at least 2 x 2: a two-way analysis of
    variance without replication, by the method of moments (a negative estimate is 0)."""
    d = grid(differences)
    k, s = d.shape
    if k < 2 or s < 2:
        raise ValueError(f"variance components need at least 2 seeds and 2 sequences, got {k} x {s}")
    seed_means, sequence_means = d.mean(1) - d.mean(), d.mean(0) - d.mean()  # (K,), (S,)
    residual = d - d.mean() - seed_means[:, None] - sequence_means[None]  # (K, S)
    ms_residual = (residual ** 2).sum() / ((k - 1) * (s - 1))
    return Components(max(0.0, float(s * (seed_means ** 2).sum() / (k - 1) - ms_residual) / s),
                      max(0.0, float(k * (sequence_means ** 2).sum() / (s - 1) - ms_residual) / k), float(ms_residual))
