"""Trackers of one evaluation compared with their uncertainty: per-tracker means over sequences with bootstrap
intervals, and each tracker against a reference row on the same sequences (``stats.paired``).

``python -m stif_core compare --metrics runs/eval/metrics.json --reference stif-baseline``
"""
from __future__ import annotations

from .stats import interval, paired, per_sequence

COMPARED = ("auc", "ao", "sr50", "sr75", "prec20")


def common_sequences(rows: dict) -> tuple[list[str], dict[str, str]]:
    """The sequences that every row scored on the same data, in the first row's order, and the others with why
    they are left out. A row written before data fingerprints (no ``data`` per sequence) is paired by name."""
    first = next(iter(rows.values()))["per_sequence"]
    named = {s for r in rows.values() for s in r["per_sequence"]}
    kept, dropped = [], {}
    for s in [*first, *sorted(named - set(first))]:
        if not all(s in r["per_sequence"] for r in rows.values()):
            dropped[s] = "not scored by every row"
        elif len({r["per_sequence"][s].get("data") for r in rows.values()} - {None}) > 1:
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


def comparison(rows: dict, reference: str | None = None, keys: tuple[str, ...] = COMPARED):
    """A DataFrame, one row per tracker: for each key its mean over the common sequences with the 95% interval,
    and against ``reference`` (when given) the paired difference with its interval, how many sequences are
    ahead / behind, and whether the interval excludes zero."""
    import pandas as pd

    if not rows:
        raise ValueError("no rows to compare")
    if reference is not None and reference not in rows:
        raise ValueError(f"reference {reference!r} is not a row of these metrics; rows: {list(rows)}")
    sequences, dropped = common_sequences(rows)
    if not sequences:
        raise ValueError(f"the rows have no sequence in common scored on the same data: {dropped}")
    check_scores(rows, keys, sequences)
    table = []
    for name, row in rows.items():
        line = {"tracker": name, "sequences": len(sequences)}
        for key in keys:
            ci = interval(per_sequence(row, key, sequences))
            line |= {key: ci.mean, f"{key}_low": ci.low, f"{key}_high": ci.high}
            if reference is not None and name != reference:
                p = paired(per_sequence(row, key, sequences), per_sequence(rows[reference], key, sequences))
                line |= {f"d_{key}": p.difference.mean, f"d_{key}_low": p.difference.low,
                         f"d_{key}_high": p.difference.high, f"{key}_ahead": p.ahead, f"{key}_behind": p.behind,
                         f"{key}_resolved": p.resolved}
        table.append(line)
    frame = pd.DataFrame(table).set_index("tracker")
    frame.attrs["dropped"] = dropped
    frame.attrs["unfingerprinted"] = [n for n, r in rows.items()
                                      if any("data" not in r["per_sequence"][s] for s in sequences)]
    return frame


def span(mean: float, low: float, high: float, signed: bool = False) -> str:
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(mean)} [{f.format(low)}, {f.format(high)}]"


def format_comparison(table, reference: str | None = None, keys: tuple[str, ...] = ("auc", "ao")) -> str:
    """Text lines: mean [interval] per key, and the paired difference against the reference."""
    head = f"{'tracker':<28}" + "".join(f"{k + ' [95%]':>24}" for k in keys)
    if reference is not None:
        head += "".join(f"{'d' + k + ' vs ' + reference:>36}" for k in keys)
    lines = [head]
    for name, r in table.iterrows():
        line = f"{name:<28}" + "".join(f"{span(r[k], r[k + '_low'], r[k + '_high']):>24}" for k in keys)
        for k in keys if reference is not None else ():
            if name == reference:
                line += f"{'(reference)':>36}"
                continue
            d = span(r["d_" + k], r[f"d_{k}_low"], r[f"d_{k}_high"], signed=True)
            line += f"{d} {int(r[k + '_ahead'])}/{int(r[k + '_behind'])}{'*' if r[k + '_resolved'] else ' '}".rjust(36)
        lines.append(line)
    n = int(table["sequences"].iloc[0])
    notes = [f"mean over {n} sequences [bootstrap 95% interval over sequences]"
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
    return "\n".join(lines + notes)
