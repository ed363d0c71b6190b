"""The paper's Table 1 and the knock-outs of the full model, over seeds: the rows of ``eval`` runs (each with its
recorded set-up: variant, knock-out, seed) grouped by row, each row's mean over seeds and sequences with the
bootstrap over both (``evaluation.stats``), paired differences against the baseline (Table 1) or the full model
(knock-outs), the paper's numbers beside ours, a figure, and a sentence per row saying what is and is not resolved.

Used by ``make report`` (``lab.report``) and notebook 10, which reads the stored evaluation of the shipped seeds
(``data/table1_val.json``)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import VARIANTS
from ..evaluation.compare import SEED_KEYS, common_sequences, comparison, scores_of, span
from ..evaluation.tre import starts_text
from ..tracking.memory import DEFAULT_MEMORY_POLICY

# The paper's Table 1 (GOT-10k test): AO, SR0.5, SR0.75 per row.
PAPER_TABLE1 = {"baseline": (0.642, 0.737, 0.545), "ste": (0.644, 0.739, 0.550), "sde_q": (0.643, 0.740, 0.550),
                "stif": (0.644, 0.742, 0.549), "ste+sde_q": (0.647, 0.750, 0.575), "full": (0.652, 0.781, 0.590)}
TRAINED_WITHOUT = {"no_q2m": "ste+sde_q", "no_m2q": "ste+sde_q"}  # the Table 1 row trained without the part
STORED = "table1_val.json"  # the stored evaluation of the shipped seeds, in <project>/data


def row_label(setup: dict) -> str:
    """A row's name from its recorded set-up: the variant (``full``), or ``full-ko-<knock-out>``."""
    return setup["variant"] + (f"-ko-{setup['knockout']}" if setup.get("knockout") else "")


def row_groups(rows: dict) -> dict[str, list[str]]:
    """Label -> the names of its seeds' rows in seed order, Table 1's order first, then the knock-outs; rows of one
    label that differ in more than checkpoint and seed cannot be pooled as seeds."""
    groups: dict[str, list[str]] = {}
    setups: dict[str, dict] = {}
    for name, row in rows.items():
        setup = row.get("setup", {})
        if "variant" not in setup:
            raise ValueError(f"row {name!r} records no variant; Table 1 needs the rows of STIF checkpoints "
                             "evaluated by eval or the report")
        label = row_label(setup)
        common = {k: v for k, v in setup.items() if k not in SEED_KEYS}
        if setups.setdefault(label, common) != common:
            raise ValueError(f"rows {groups[label][0]!r} and {name!r} of {label} differ in more than checkpoint and "
                             f"seed: {json.dumps(setups[label], sort_keys=True)} against "
                             f"{json.dumps(common, sort_keys=True)}")
        groups.setdefault(label, []).append(name)
    order = [v for v in VARIANTS if v in groups] + sorted(k for k in groups if k not in VARIANTS)
    return {k: sorted(groups[k], key=lambda n: rows[n]["setup"].get("seed", 0)) for k in order}


def evaluate_row(checkpoints: list[str], sequences: list, out: str | Path, knockout: str = "", device: str = "cpu",
                 memory_policy: str = DEFAULT_MEMORY_POLICY, starts: int = 1) -> dict:
    """Track ``sequences`` with each checkpoint (seed) of one row, with one part knocked out if asked."""
    from ..evaluation.harness import evaluate
    from ..evaluation.trackers import stif_trackers

    engine = "onnx" if device == "cpu" else "torch"
    factories, signatures = stif_trackers(checkpoints, "otb", memory_policy, device, engine, knockout)
    if knockout:  # only the knocked-out rows
        factories = {k: f for k, f in factories.items() if k.endswith(f"-ko-{knockout}")}
    return evaluate(factories, sequences, out, progress=False, signatures=signatures, starts=starts)


def table_of(rows: dict, labels: list[str], reference: str | None, keys: tuple[str, ...], same_seeds: bool = False):
    groups = row_groups(rows)
    groups = {k: groups[k] for k in labels}
    if same_seeds:  # knock-outs: seed k of every row is the reference's seed k
        seeds = {k: [rows[n]["setup"].get("checkpoint_sha256") for n in names] for k, names in groups.items()}
        other = [k for k, s in seeds.items() if s != seeds[reference]]
        if other:
            raise ValueError(f"knock-outs pair seed by seed, but {other} were not evaluated on the checkpoints of "
                             f"{reference}")
    kept = {n: rows[n] for names in groups.values() for n in names}
    return comparison(kept, reference, keys, groups=groups, same_seeds=same_seeds)


def variant_table(rows: dict, keys: tuple[str, ...] = ("auc", "ao", "sr50", "sr75")):
    """The Table 1 rows, paired against the baseline (``table_of``), beside the paper's AO, SR0.5 and SR0.75."""
    labels = [k for k in row_groups(rows) if k in VARIANTS]
    table = table_of(rows, labels, "baseline" if "baseline" in labels else None, keys)
    return table.join(paper_frame().add_prefix("paper "))


def knockout_table(rows: dict, keys: tuple[str, ...] = ("auc", "ao")):
    """The full model with each part switched off at inference, paired against the full model by sequence and by
    seed (the training's luck is common to both), beside the Table 1 row trained without that part if any."""
    labels = [k for k in row_groups(rows) if k == "full" or k.startswith("full-ko-")]
    table = table_of(rows, labels, "full", keys, same_seeds=True)
    table["trained without it"] = [TRAINED_WITHOUT.get(k.split("-ko-")[-1]) for k in table.index]
    return table


def power_table(rows: dict, key: str = "auc", differences: tuple[float, ...] = (0.01, 0.02, 0.05),
                seeds: tuple[int, ...] = (3, 10)):
    """How much evidence would resolve a Table 1 difference (``stats.components``): for each row against the
    baseline (seed k against seed k, per sequence), the spread of the difference over seeds, over sequences and
    left over, the smallest difference resolvable with this table's seeds and sequences, with one model a row on
    GOT-10k's 180 test sequences (the paper's evidence) and with this table's seeds there, and the sequences needed
    to resolve each of ``differences`` with each of ``seeds``; the last line pools the rows' components (their
    mean)."""
    from ..evaluation.stats import Components, components

    groups = {k: v for k, v in row_groups(rows).items() if k in VARIANTS}
    uneven = [k for k, names in groups.items() if len(names) != len(groups.get("baseline", [])) or len(names) < 2]
    if "baseline" not in groups or uneven:
        raise ValueError(f"the power analysis pairs seed k of each row with seed k of the baseline: it needs the "
                         f"baseline and every row with the same number of seeds, at least 2 (not {uneven})")
    sequences, _ = common_sequences({n: rows[n] for names in groups.values() for n in names})
    base = scores_of(rows, groups["baseline"], key, sequences)  # (K, S)
    found = {label: components(scores_of(rows, names, key, sequences) - base)
             for label, names in groups.items() if label != "baseline"}
    found["pooled"] = Components(*(float(np.mean([getattr(c, f) for c in found.values()]))
                                   for f in ("seed", "sequence", "residual")))
    k, s = base.shape
    table = pd.DataFrame([{"row": label, "sd seed": c.seed ** 0.5, "sd sequence": c.sequence ** 0.5,
                           "sd residual": c.residual ** 0.5, f"resolvable {k}x{s}": c.resolvable(k, s),
                           "resolvable 1x180": c.resolvable(1, 180),
                           f"resolvable {k}x180": c.resolvable(k, 180),
                           **{f"sequences for {d} with {n} seeds": c.sequences_needed(d, n)
                              for d in differences for n in seeds}} for label, c in found.items()]).set_index("row")
    table.attrs["evidence"] = (k, s)
    return table


def has_variants(rows: dict) -> bool:
    return any(k in VARIANTS for k in row_groups(rows))


def has_knockouts(rows: dict) -> bool:
    labels = row_groups(rows)
    return "full" in labels and any(k.startswith("full-ko-") for k in labels)


def interval_figure(tables: dict[str, pd.DataFrame]):
    """Per table, two panels: each row's AUC mean with its own interval and each seed's mean (``with_seed_means``)
    a cross (the legend below the panel, where it hides no point); below, each row's paired difference against the
    table's reference with its interval, the one that decides whether a row is resolved."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(tables), figsize=(6.5 * len(tables), 7), squeeze=False, sharex="col")
    for (top, bottom), (title, table) in zip(axes.T, tables.items()):
        x = np.arange(len(table))  # (R,)
        top.errorbar(x, table["auc"], yerr=[table["auc"] - table["auc_low"], table["auc_high"] - table["auc"]],
                     fmt="o", color="black", ecolor="tab:blue", capsize=4, label="mean [95% interval]")
        for i, means in enumerate(table.attrs.get("seed_means", {}).values()):
            top.plot([i] * len(means), means, "x", color="tab:orange", label="one seed" if i == 0 else None)
        top.set(title=title, ylabel="AUC on val (seeds and sequences)", ylim=(0, 1))
        top.legend(loc="upper center", bbox_to_anchor=(0.5, -0.04), ncol=2, fontsize=8, frameon=False)
        paired = table["d_auc"].notna() if "d_auc" in table else np.zeros(len(table), bool)  # (R,)
        if paired.any():
            d = table[paired]
            bottom.errorbar(x[paired.to_numpy()], d["d_auc"], yerr=[d["d_auc"] - d["d_auc_low"],
                                                                     d["d_auc_high"] - d["d_auc"]],
                            fmt="s", color="black", ecolor="tab:green", capsize=4)
            bottom.axhline(0, color="grey", lw=0.8)
            reference = table.index[~paired.to_numpy()][0] if (~paired).any() else "the reference"
            bottom.set_ylabel("AUC difference")
            bottom.set_title(f"paired with {reference} (seed by seed, sequence by sequence) [95%]", fontsize=10)
        else:
            bottom.text(0.5, 0.5, "no reference row: no paired differences", ha="center", transform=bottom.transAxes)
            bottom.set_yticks([])
        bottom.set_xticks(list(x), table.index, rotation=30, ha="right")
    fig.tight_layout()
    return fig


def power_figure(power: pd.DataFrame, row: str = "pooled"):
    """The smallest AUC difference resolvable (95%, 80% power) against the number of sequences, for 1, 3 and 10
    training seeds a row, from ``power_table``'s components of ``row``; this table's evidence and the paper's
    (one model a row, GOT-10k's 180 test sequences) marked."""
    import matplotlib.pyplot as plt

    from ..evaluation.stats import Components

    c = Components(*(float(power.loc[row, f"sd {part}"]) ** 2 for part in ("seed", "sequence", "residual")))
    n = np.unique(np.geomspace(2, 5000, 60).astype(int))  # (M,) sequence counts
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for seeds, colour in ((1, "tab:red"), (3, "tab:blue"), (10, "tab:green")):
        ax.plot(n, [c.resolvable(seeds, int(m)) for m in n], color=colour, label=f"{seeds} seed(s) a row")
    for d in (0.01, 0.02, 0.05):
        ax.axhline(d, color="grey", lw=0.8, ls=":")
        ax.annotate(f"{d}", (n[-1], d), fontsize=8, va="bottom", ha="right", color="grey")
    k, s = power.attrs["evidence"]  # this table's seeds and sequences
    ax.plot([s], [c.resolvable(k, s)], "o", color="black", label=f"this table ({k} seeds x {s} sequences)")
    ax.plot([180], [c.resolvable(1, 180)], "s", color="tab:red", label="the paper's evidence (1 x 180)")
    ax.set(xscale="log", yscale="log", xlabel="sequences", ylabel="smallest resolvable AUC difference",
           title=f"How much evidence resolves a Table 1 difference ({row} components)")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def with_seed_means(table, rows: dict, key: str = "auc"):
    """``table.attrs['seed_means']``: each row's seeds' means over the common sequences (for the figure)."""
    groups, sequences = row_groups(rows), common_sequences(rows)[0]
    table.attrs["seed_means"] = {label: scores_of(rows, groups[label], key, sequences).mean(1).tolist()
                                 for label in table.index}
    return table


def row_sentences(table, reference: str) -> list[str]:
    """One sentence per row: its difference to the reference, resolved or not, and the paper's where it has one."""
    lines = []
    for label, r in table.drop(index=reference).iterrows():
        d = span(r["d_auc"], r["d_auc_low"], r["d_auc_high"], signed=True)
        verdict = ("resolved: its interval excludes zero" if r["auc_resolved"] else
                   "not resolved: its interval includes zero")
        paper = (f"; the paper: {PAPER_TABLE1[label][0] - PAPER_TABLE1[reference][0]:+.3f} AO"
                 if label in PAPER_TABLE1 and reference in PAPER_TABLE1 else "")
        lines.append(f"- {label}: {d} AUC against {reference}, ahead on {int(r['auc_ahead'])} and behind on "
                     f"{int(r['auc_behind'])} of {int(r['sequences'])} sequences, {verdict}{paper}.")
    return lines


def resolved_sentence(table, reference: str) -> str:
    """Which rows differ from the reference with an interval that excludes zero, from the table itself."""
    others = table.drop(index=reference)
    hits = [f"{k} ({r['d_auc']:+.3f})" for k, r in others.iterrows() if r["auc_resolved"]]
    width = float((others["d_auc_high"] - others["d_auc_low"]).median())
    found = ("resolved against " + reference + ": " + ", ".join(hits)) if hits else \
        f"no row differs from {reference} with an interval that excludes zero"
    return f"{found}; the median width of a difference's interval is {width:.3f} AUC."


def trained_without_sentence(rows: dict) -> str:
    """The fusion knocked out at inference against the fusion left out in training (ste+sde_q)."""
    groups = row_groups(rows)
    if "ste+sde_q" not in groups or "full" not in groups:
        return "The row trained without the fusion (ste+sde_q) was not run."
    d = table_of(rows, ["full", "ste+sde_q"], "full", ("auc",)).loc["ste+sde_q"]
    return (f"Trained without the fusion (ste+sde_q, STMTrack's read instead), the model differs from the full one "
            f"by {span(d['d_auc'], d['d_auc_low'], d['d_auc_high'], signed=True)} AUC; the other parts have no "
            "Table 1 row that lacks only them.")


def stored_rows() -> dict:
    """The stored evaluation of the shipped seeds, ``<project>/data/table1_val.json``."""
    from ..evaluation.results import read_metrics
    from ..paths import project_dir

    return read_metrics(project_dir() / "data" / STORED)


def knockout_effects(names: list[str], rows: dict | None = None) -> tuple[list[str], dict[str, float]]:
    """What switching each named part off does to the full model (``rows``: the stored evaluation by default):
    sentences, and each one's mean AUC difference."""
    from ..model.knockouts import KNOCKOUTS

    rows = stored_rows() if rows is None else rows
    table = knockout_table(rows).loc[["full", *(f"full-ko-{n}" for n in names)]]
    lines = [f"{n}: {KNOCKOUTS[n]}" for n in names] + row_sentences(table, "full")
    first = rows[row_groups(rows)["full"][0]]
    lines.append(f"(the full model over {int(table['seeds'].iloc[0])} seeds, {int(table['sequences'].iloc[0])} val "
                 f"sequences, {starts_text(first)} start(s) each, paired by sequence)")
    return lines, {n: float(table.loc[f"full-ko-{n}", "d_auc"]) for n in names}


def paper_frame() -> pd.DataFrame:
    return pd.DataFrame(PAPER_TABLE1, index=["AO", "SR0.5", "SR0.75"]).T
