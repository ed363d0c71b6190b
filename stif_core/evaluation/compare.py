"""Trackers of one evaluation compared with their uncertainty: per-tracker means over sequences with bootstrap
intervals, and each tracker against a reference row on the same sequences (``stats.paired``).

``python -m stif_core compare --metrics runs/eval/metrics.json --reference stif-baseline``
"""
from __future__ import annotations

import json
from pathlib import Path

from .stats import interval, paired, per_sequence

COMPARED = ("auc", "ao", "sr50", "sr75", "prec20")


def read_metrics(path: str | Path) -> dict:
    """The rows of an ``eval`` run's ``metrics.json``; a clear error when it is missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no metrics file at {path} (``python -m stif_core eval`` writes one)")
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(rows, dict) or not all(isinstance(r, dict) and "per_sequence" in r for r in rows.values()):
        raise ValueError(f"{path} is not an eval metrics file (tracker -> overall, per_sequence)")
    return rows


def common_sequences(rows: dict) -> list[str]:
    """The sequences every row has results for, in the first row's order."""
    first = next(iter(rows.values()))["per_sequence"]
    return [s for s in first if all(s in r["per_sequence"] for r in rows.values())]


def comparison(rows: dict, reference: str | None = None, keys: tuple[str, ...] = COMPARED):
    """A DataFrame, one row per tracker: for each key its mean over the common sequences with the 95% interval,
    and against ``reference`` (when given) the paired difference with its interval, how many sequences are
    ahead / behind, and whether the interval excludes zero."""
    import pandas as pd

    if reference is not None and reference not in rows:
        raise ValueError(f"reference {reference!r} is not a row of these metrics; rows: {list(rows)}")
    sequences = common_sequences(rows)
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
    return pd.DataFrame(table).set_index("tracker")


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
    note = f"mean over {int(table['sequences'].iloc[0])} sequences [bootstrap 95% interval over sequences]"
    if reference is not None:
        note += "; d: paired difference, sequences ahead/behind, * where the interval excludes 0"
    return "\n".join(lines + [note])
