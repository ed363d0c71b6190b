"""Trackers of one evaluation compared with their uncertainty: per-tracker means over sequences with bootstrap
intervals, and each tracker against a reference row on the same sequences (``stats.paired``).

``python -m stif_core compare --metrics runs/eval/metrics.json --reference stif-baseline``
"""
from __future__ import annotations

import json
import re
import warnings

import numpy as np

from .stats import interval, paired, per_sequence, seed_spread
from .tre import records_segments

COMPARED = ("auc", "ao", "sr50", "sr75", "prec20")
SEED_KEYS = ("checkpoint_sha256", "seed")  # what differs between seeds of one row
SHA8 = re.compile(r"-[0-9a-f]{8}(?=-|$)")  # the checkpoint's mark in a row's name (harness naming)


def seed_groups(rows: dict) -> dict[str, list[str]]:
    """Rows that are seeds of one row: their recorded set-up (the recipe's digest among it) equal but for the
    checkpoint and its seed, each seed once, named after the first row without the checkpoint's mark (its own name
    where another group has that one); a row without a recorded seed and recipe is a group of its own, and so is a
    second row of a seed already in its group (the same training run scored twice), with a warning naming both."""
    by_setup: dict[str, list[str]] = {}
    for name, row in rows.items():
        setup = row.get("setup", {})
        seeded = "seed" in setup and "recipe" in setup
        key = json.dumps({k: v for k, v in setup.items() if k not in SEED_KEYS}, sort_keys=True) if seeded else None
        by_setup.setdefault(key or f"row {name}", []).append(name)
    groups: dict[str, list[str]] = {}
    for names in by_setup.values():
        kept, apart, seen = [], [], {}
        for name in names:
            seed = rows[name].get("setup", {}).get("seed")
            if len(names) > 1 and seed in seen:
                warnings.warn(f"rows {seen[seed]!r} and {name!r} are both seed {seed} of one set-up (one training "
                              f"run scored twice, or two runs of one seed): {name!r} is kept apart, not counted twice",
                              stacklevel=2)
                apart.append(name)
                continue
            seen[seed] = name
            kept.append(name)
        title = SHA8.sub("", kept[0]) if len(kept) > 1 else kept[0]
        if title not in kept and (title in groups or title in rows):  # another row's name: the first row's own
            title = kept[0]
        groups[title] = kept
        groups |= {name: [name] for name in apart}
    return groups


def scores_of(rows: dict, names: list[str], key: str, sequences: list[str]) -> np.ndarray:
    """(seeds, S) per-sequence scores of a group's rows."""
    return np.stack([per_sequence(rows[n], key, sequences) for n in names])


def scoring(row: dict) -> str:
    """How a row was scored: in one pass from frame 0, or from several starts a sequence (``eval --starts``)."""
    starts = row.get("starts", 1)
    return "in one pass from frame 0" if starts == 1 else f"from up to {starts} starts a sequence (OTB's TRE)"


def by_scoring(rows: dict) -> dict[str, dict]:
    """The rows by how they were scored (``scoring``), in their order: only rows scored alike are compared."""
    kinds: dict[str, dict] = {}
    for name, row in rows.items():
        kinds.setdefault(scoring(row), {})[name] = row
    return kinds


def common_sequences(rows: dict) -> tuple[list[str], dict[str, str]]:
    """The sequences that every row scored on the same data, in the first row's order, and the others with why
    they are left out; a row without fingerprints (``data``) of that sequence's kind is paired by name."""
    first = next(iter(rows.values()))["per_sequence"]
    named = {s for r in rows.values() for s in r["per_sequence"]}
    kept, dropped = [], {}
    for s in [*first, *sorted(named - set(first))]:
        if not all(s in r["per_sequence"] for r in rows.values()):
            dropped[s] = "not scored by every row"
            continue
        records = {(records_segments(r, s), r["per_sequence"][s].get("data")) for r in rows.values()}
        kinds = [kind for kind, data in records if data is not None]
        if len(kinds) > len(set(kinds)):  # two records of one kind differ
            dropped[s] = "rows computed on different data (frames or ground truth differ)"
        else:
            kept.append(s)
    return kept, dropped


def check_scores(rows: dict, keys: tuple[str, ...], sequences: list[str]) -> None:
    """``ValueError`` naming the first row and sequence that lack one of ``keys``."""
    for name, row in rows.items():
        for s in sequences:
            missing = [k for k in keys if k not in row["per_sequence"][s]]
            if missing:
                raise ValueError(f"row {name!r} has no {missing} for sequence {s!r}; scores: {list(COMPARED)}")


def comparison(rows: dict, reference: str | None = None, keys: tuple[str, ...] = COMPARED, seeds: bool = False,
               groups: dict[str, list[str]] | None = None, same_seeds: bool = False):
    """A DataFrame, one row per tracker: for each key its mean over the common sequences with the 95% interval,
    and against ``reference`` (when given) the paired difference with its interval, sequences ahead / behind, and
    whether the interval excludes zero. ``seeds``: rows that are seeds of one row (``seed_groups``, or the
    ``groups`` given) become one line, with ``<key>_seed_sd``, the spread of the seeds' means. ``same_seeds``:
    every group's k-th row comes from the reference's k-th training run, paired seed by seed (``stats.paired``)."""
    import pandas as pd

    if not rows:
        raise ValueError("no rows to compare")
    kinds = by_scoring(rows)
    if len(kinds) > 1:
        raise ValueError("the rows were scored differently, so their scores are not compared: " + "; ".join(
            f"{', '.join(part)}: scored {kind}" for kind, part in kinds.items()))
    groups = groups or (seed_groups(rows) if seeds else {name: [name] for name in rows})
    if reference is not None and reference not in groups:
        reference = next((g for g, names in groups.items() if reference in names), reference)
        if reference not in groups:
            raise ValueError(f"reference {reference!r} is not a row of these metrics; rows: {list(groups)}")
    sequences, dropped = common_sequences(rows)
    if not sequences:
        raise ValueError(f"the rows have no sequence in common scored on the same data: {dropped}")
    check_scores(rows, keys, sequences)
    table = []
    for group, names in groups.items():
        line = {"tracker": group, "sequences": len(sequences), "seeds": len(names)}
        for key in keys:
            values = scores_of(rows, names, key, sequences)  # (seeds, S)
            ci = interval(values)
            line |= {key: ci.mean, f"{key}_low": ci.low, f"{key}_high": ci.high,
                     f"{key}_seed_sd": seed_spread(values)}
            if reference is not None and group != reference:
                p = paired(values, scores_of(rows, groups[reference], key, sequences), same_seeds=same_seeds)
                line |= {f"d_{key}": p.difference.mean, f"d_{key}_low": p.difference.low,
                         f"d_{key}_high": p.difference.high, f"{key}_ahead": p.ahead, f"{key}_behind": p.behind,
                         f"{key}_resolved": p.resolved}
        table.append(line)
    frame = pd.DataFrame(table).set_index("tracker")
    frame.attrs["dropped"], frame.attrs["reference"] = dropped, reference
    frame.attrs["unfingerprinted"] = [n for n, r in rows.items()
                                      if any("data" not in r["per_sequence"][s] for s in sequences)]
    mixed = [s for s in sequences if len({records_segments(r, s) for r in rows.values()}) > 1]
    frame.attrs["earlier_tre"] = [n for n, r in rows.items() if any(records_segments(r, s) for s in mixed)]
    return frame


def comparisons(rows: dict, reference: str | None = None, keys: tuple[str, ...] = COMPARED, seeds: bool = False
                ) -> dict[str, object]:
    """``comparison`` of each set of rows scored alike (``by_scoring``), the reference only in its own set."""
    kinds = by_scoring(rows)
    held = [k for k, part in kinds.items() if reference in part or (seeds and reference in seed_groups(part))]
    if reference is not None and len(kinds) > 1 and not held:
        raise ValueError(f"reference {reference!r} is not a row of these metrics; rows: {list(rows)}")
    return {kind: comparison(part, reference if len(kinds) == 1 or kind in held else None, keys, seeds)
            for kind, part in kinds.items()}


def span(mean: float, low: float, high: float, signed: bool = False) -> str:
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(mean)} [{f.format(low)}, {f.format(high)}]"


def format_comparison(table, reference: str | None = None, keys: tuple[str, ...] = ("auc", "ao")) -> str:
    """Text lines: mean [interval] per key, and the paired difference against the reference."""
    seeded = int(table["seeds"].max()) > 1
    head = f"{'tracker':<28}" + (f"{'seeds':>6}" if seeded else "") + "".join(f"{k + ' [95%]':>24}" for k in keys)
    head += "".join(f"{k + ' seed sd':>14}" for k in keys) if seeded else ""
    if reference is not None:
        head += "".join(f" {'d' + k + ' vs ' + reference:>35}" for k in keys)
    lines = [head]
    for name, r in table.iterrows():
        line = f"{name:<28}" + (f"{int(r['seeds']):>6}" if seeded else "")
        line += "".join(f"{span(r[k], r[k + '_low'], r[k + '_high']):>24}" for k in keys)
        line += "".join(f"{r[k + '_seed_sd']:>14.3f}" for k in keys) if seeded else ""
        for k in keys if reference is not None else ():
            if name == reference:
                line += f"{'(reference)':>36}"
                continue
            d = span(r["d_" + k], r[f"d_{k}_low"], r[f"d_{k}_high"], signed=True)
            line += f"{d} {int(r[k + '_ahead'])}/{int(r[k + '_behind'])}{'*' if r[k + '_resolved'] else ' '}".rjust(36)
        lines.append(line)
    n = int(table["sequences"].iloc[0])
    notes = [(f"mean over {n} sequences [bootstrap 95% interval over sequences]" if not seeded else
              f"mean over seeds and {n} sequences [bootstrap 95% interval over both: sequences resampled, and each "
              "row's seeds within it]; seed sd: spread of the seeds' means")
             + ("; d: paired difference, sequences ahead/behind, * where the interval excludes 0"
                if reference is not None else "")]
    if n < 2:
        notes.append("one sequence in common: no interval can be computed and no difference is marked resolved")
    dropped = table.attrs.get("dropped", {})
    if dropped:
        notes.append(f"left out ({len(dropped)}): " + "; ".join(f"{s}: {why}" for s, why in dropped.items()))
    if table.attrs.get("unfingerprinted"):
        notes.append(f"rows without a record of their data, paired by sequence name only: "
                     f"{', '.join(table.attrs['unfingerprinted'])}")
    if table.attrs.get("earlier_tre"):
        notes.append("TRE rows of an earlier eval, whose record of the data cannot be checked against the other "
                     "rows' (eval run again records it; its results are read back), paired by sequence name only: "
                     + ", ".join(table.attrs["earlier_tre"]))
    return "\n".join(lines + notes)
