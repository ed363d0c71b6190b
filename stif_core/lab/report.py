"""The main job: every notebook of the suite, then the ablation notebook for the six Table 1 variants and the
knock-outs of the full model, run through papermill; the rows gathered into tables with bootstrap intervals
and paired differences, a figure and ``reports/summary.md``.

``python -m stif_core report [--full] [--train] [--device auto] [--data-root DIR] [--out reports]``
"""
from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import papermill as pm
from jupyter_client.kernelspec import find_kernel_specs
from traitlets.config import Config

from ..config import VARIANTS, parse_variant, variant_name
from ..evaluation.compare import comparison, format_comparison, span
from ..files import fresh_folder, owned_dir, read_json
from ..model.knockouts import KNOCKOUTS
from ..paths import project_dir, shipped_models

ABLATION = "10_ablation.ipynb"
TRAINED_WITHOUT = {"no_q2m": "ste+sde_q", "no_m2q": "ste+sde_q"}  # the Table 1 row trained without the part
# The paper's Table 1 (GOT-10k test): AO, SR0.5, SR0.75 per row.
PAPER_TABLE1 = {"baseline": (0.642, 0.737, 0.545), "ste": (0.644, 0.739, 0.550), "sde_q": (0.643, 0.740, 0.550),
                "stif": (0.644, 0.742, 0.549), "ste+sde_q": (0.647, 0.750, 0.575), "full": (0.652, 0.781, 0.590)}


def notebooks_dir() -> Path:
    """``<project>/notebooks`` (``stif_core.paths.project_dir``)."""
    folder = project_dir() / "notebooks"
    if not folder.is_dir():
        raise FileNotFoundError(f"no notebooks folder at {folder}; run from the project folder or set $STIF_PROJECT")
    return folder


def suite(ablation: bool = False) -> list[Path]:
    """The teaching notebooks in order; the ablation notebook too when asked (it otherwise runs once per
    variant)."""
    return sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb") if ablation or p.name != ABLATION)


def kernel_for(notebook: Path) -> str:
    """The kernel named in the notebook's metadata (the project's, registered by ``make setup``), else python3."""
    name = json.loads(notebook.read_text())["metadata"].get("kernelspec", {}).get("name", "python3")
    return name if name in find_kernel_specs() else "python3"


def check_parameters(notebook: Path, parameters: dict) -> None:
    """Refuse parameter names the notebook's ``parameters`` cell does not define (papermill only warns)."""
    known = pm.inspect_notebook(str(notebook))
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"{notebook.name}: unknown parameter(s) {unknown}; valid: {sorted(known)}")


def execute(notebook: Path, output: Path, parameters: dict, kernel: str | None = None) -> float:
    """Run one notebook into ``output`` (in its own folder, on its kernel unless ``kernel`` names another);
    returns the seconds it took. The kernel talks over local IPC sockets, not unencrypted TCP."""
    check_parameters(notebook, parameters)
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as sockets:
        ipc = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}})
        pm.execute_notebook(str(notebook), str(output), parameters=parameters,
                            kernel_name=kernel or kernel_for(notebook), cwd=str(notebook.parent),
                            progress_bar=False, config=ipc)
    return time.perf_counter() - start


def shipped_variants() -> list[str]:
    """The Table 1 rows that have a shipped model (``stif_lite_<variant>``), in Table 1's order."""
    shipped = set(shipped_models())
    return [v for v in VARIANTS if f"stif_lite_{v.replace('+', '_')}" in shipped]


def run_all(tasks: list[tuple[str, Path, Path, dict]], jobs: int) -> dict[str, float]:
    """Execute (label, notebook, output, parameters) tasks, ``jobs`` at a time (each kernel uses one CPU thread);
    returns the seconds per label. The first failure stops the batch and is raised."""
    timings = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        running = {pool.submit(execute, nb, output, params): label for label, nb, output, params in tasks}
        for done in as_completed(running):
            timings[running[done]] = done.result()
            print(f"done: {running[done]} ({timings[running[done]]:.0f} s)", flush=True)
    return {label: timings[label] for label, *_ in tasks}


def run(out: str | Path = "reports", fast: bool = True, device: str = "auto", data_root: str = "",
        variants: list[str] | None = None, train: bool = False, train_steps: int | None = None,
        knockouts: bool = True, ablation_clips: bool = False, jobs: int = 2) -> Path:
    """Execute the suite, then the ablation notebook once per variant (its shipped model, or retrained with
    ``train``) and once per knock-out of the full model, ``jobs`` notebooks at a time; returns the path of the
    summary. Without ``variants``: every Table 1 row with a shipped model (all six with ``train``). The
    ablation tracks whole val sequences unless ``ablation_clips`` (the first 100 frames: a smoke test)."""
    if variants:
        names = [variant_name(**parse_variant(v)) for v in variants]  # a bad name fails here
    else:
        names = list(VARIANTS) if train else shipped_variants()
        missing = [v for v in VARIANTS if v not in names]
        if missing:
            print(f"Table 1 rows without a shipped model, left out: {missing} (train them with --train, or "
                  "python -m stif_core train --config configs/lite.json --variant <row>)", flush=True)
    out = owned_dir(out, "--out", "summary.md")
    common = {"device": device, "data_root": data_root}
    tasks = [(nb.name, nb, out / "notebooks" / nb.name, common | {"fast": fast}) for nb in suite()]
    runs = [(v, "") for v in names] + ([("full", k) for k in KNOCKOUTS] if knockouts and "full" in names else [])
    folders = {}
    for variant, knockout in runs:
        label = variant + (f"-ko-{knockout}" if knockout else "")
        folders[label] = fresh_folder(out / "ablation" / label.replace("+", "_"))  # a folder the notebook may empty
        params = common | {"variant": variant, "knockout": knockout, "fast": ablation_clips,
                           "output_dir": str(folders[label]), "train": train and not knockout,
                           "train_steps": train_steps or 0}
        tasks.append((f"{ABLATION} [{label}]", notebooks_dir() / ABLATION, folders[label] / ABLATION, params))
    print(f"running {len(tasks)} notebooks, {jobs} at a time ...", flush=True)
    timings = run_all(tasks, 1 if train else jobs)  # training uses every core itself
    rows = {label: read_json(folder / "metrics.json", "ablation metrics") for label, folder in folders.items()}
    summary = write_summary(out, rows, timings)
    print(f"summary written to {summary}")
    return summary


def variant_rows(rows: dict) -> dict:
    return {k: r for k, r in rows.items() if not r["knockout"]}


def ablation_table(rows: dict):
    """The variants beside each other: means with intervals, paired differences against the baseline, and the
    paper's Table 1 (a pandas DataFrame)."""
    table = comparison(variant_rows(rows), "baseline" if "baseline" in rows else None)
    paper = pd.DataFrame(PAPER_TABLE1, index=["paper AO", "paper SR0.5", "paper SR0.75"]).T
    return table.join(paper)


def knockout_table(rows: dict):
    """The full model with each part switched off, paired against the full model; beside it, the Table 1 row
    trained without that part where one exists (the fusion as a whole: ste+sde_q)."""
    knocked = {k: r for k, r in rows.items() if k == "full" or r["knockout"]}
    table = comparison(knocked, "full")
    table["trained without it"] = [TRAINED_WITHOUT.get(k.split("-ko-")[-1]) for k in table.index]
    return table


def interval_figure(tables: dict[str, "pd.DataFrame"]):
    """AUC means with their intervals, one panel per table (variants; knock-outs)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, len(tables), figsize=(6.5 * len(tables), 3.8), squeeze=False)
    for ax, (title, table) in zip(axes[0], tables.items()):
        t = table.reset_index()
        sns.pointplot(t, x="tracker", y="auc", linestyles="none", color="black", ax=ax)
        ax.errorbar(range(len(t)), t["auc"], yerr=[t["auc"] - t["auc_low"], t["auc_high"] - t["auc"]],
                    fmt="none", ecolor="tab:blue", capsize=4)
        ax.set(title=title, xlabel="", ylabel="AUC on val (95% interval over sequences)", ylim=(0, 1))
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def resolved_sentence(table, reference: str) -> str:
    """Which rows differ from the reference with an interval that excludes zero, from the table itself."""
    others = table.drop(index=reference)
    hits = [f"{k} ({r['d_auc']:+.3f})" for k, r in others.iterrows() if r["auc_resolved"]]
    width = float((others["d_auc_high"] - others["d_auc_low"]).median())
    found = ("resolved against " + reference + ": " + ", ".join(hits)) if hits else \
        f"no row differs from {reference} with an interval that excludes zero"
    return f"{found}; the median width of a difference's interval is {width:.3f} AUC."


def trained_without_sentence(rows: dict) -> str:
    """The fusion knocked out at inference against the fusion left out in training (ste+sde_q), both paired
    against the full model."""
    if "ste+sde_q" not in rows:
        return "The row trained without the fusion (ste+sde_q) was not run."
    d = comparison({"full": rows["full"], "ste+sde_q": rows["ste+sde_q"]}, "full").loc["ste+sde_q"]
    return (f"Trained without the fusion (ste+sde_q, STMTrack's read instead), the model differs from the full one "
            f"by {span(d['d_auc'], d['d_auc_low'], d['d_auc_high'], signed=True)} AUC; the other parts have no "
            "Table 1 row that lacks only them.")


def write_summary(out: Path, rows: dict, timings: dict[str, float]) -> Path:
    tables = {"Table 1 rows (ours, val)": ablation_table(rows)}
    keys = ("auc", "ao")
    lines = ["# STIF suite report", "",
             "Executed notebooks are in `notebooks/`; each ablation run's notebook, metrics and figures in "
             "`ablation/`.", "", "## Ablation (Table 1 style)", ""]
    first = next(iter(rows.values()))
    frames = f"the first {first['eval_frames']} frames of each" if first["fast"] else "the whole of each"
    lines += [f"The shipped lite models (EfficientNet-Lite0, `configs/lite.json` with each row's variant: the same "
              f"recipe, budget and seed), tracked on {frames} of the {len(first['sequences'])} `val` sequences. "
              "Means over sequences with bootstrap 95% intervals over sequences; d: the paired difference against the "
              "baseline on the same sequences, sequences ahead/behind, * where its interval excludes zero.", "",
              "```", format_comparison(tables["Table 1 rows (ours, val)"], "baseline" if "baseline" in rows
                                       else None, keys), "```", "",
              "The paper's Table 1 (GOT-10k test, GoogLeNet, 20 epochs of GOT-10k):", "", "```",
              pd.DataFrame(PAPER_TABLE1, index=["AO", "SR0.5", "SR0.75"]).T.to_string(), "```", ""]
    missing = [v for v in VARIANTS if v not in rows]
    if missing:
        lines += [f"Rows without a shipped model, not in this table: {', '.join(missing)} (`--train` retrains "
                  "every row with its recipe).", ""]
    if "baseline" in rows and len(variant_rows(rows)) > 1:
        lines += ["What our rows show: " + resolved_sentence(tables["Table 1 rows (ours, val)"], "baseline"), ""]
    if any(r["knockout"] for r in rows.values()) and "full" in rows:
        tables["knock-outs of the full model"] = knockout_table(rows)
        lines += ["## Knock-outs: the full model with one part switched off at inference", "",
                  "```", format_comparison(tables["knock-outs of the full model"], "full", keys), "```", "",
                  "What each part contributes to the trained model: "
                  + resolved_sentence(tables["knock-outs of the full model"], "full")
                  + " " + trained_without_sentence(rows), ""]
    fig = interval_figure(tables)
    fig.savefig(out / "ablation.png", dpi=90, bbox_inches="tight")
    lines += ["![ablation](ablation.png)", "",
              "What differs from the paper, honestly: the data (52 short training clips, against GOT-10k's "
              "9,335 videos), the budget (an hour and a half of 2 CPU cores per variant, against days of GPU), "
              "the backbone (Lite0, frozen, against GoogLeNet) and the benchmark (9 val videos, against 180 "
              "GOT-10k test videos). The paper's gains are at most 0.01 AO: with intervals of the width above, "
              "9 videos cannot resolve them, whatever the sign of our differences. And each row is one training "
              "run of one seed: an interval over sequences leaves out the spread between training runs, so a "
              "difference it resolves may still be partly the luck of one run.", "",
              "## Run times", ""] + [f"- {name}: {seconds:.0f} s" for name, seconds in timings.items()]
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path
