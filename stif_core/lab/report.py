"""The main job: every notebook of the suite, then the ablation notebook once per Table 1 row and once per
knock-out of the full model, each evaluating every shipped seed of its row, run through papermill; the rows
gathered into tables over seeds and sequences (``evaluation.table1``), a figure and ``reports/summary.md``, and
notebook 10 once more to show the gathered table.

``python -m stif_core report [--full] [--train] [--device auto] [--data-root DIR] [--out reports]``
"""
from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import papermill as pm
from jupyter_client.kernelspec import find_kernel_specs
from traitlets.config import Config

from ..config import VARIANTS, parse_variant, variant_name
from ..evaluation import table1
from ..evaluation.compare import format_comparison
from ..evaluation.results import read_metrics
from ..files import fresh_folder, owned_dir
from ..model.knockouts import KNOCKOUTS
from ..paths import project_dir, row_seeds
from .notebook import FAST_FRAMES

ABLATION = "10_ablation.ipynb"


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
    """The Table 1 rows that have a shipped model (``paths.row_seeds``), in Table 1's order."""
    return [v for v in VARIANTS if row_seeds(v)]


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
        knockouts: bool = True, jobs: int = 2, starts: int = 1) -> Path:
    """Execute the suite, then the ablation notebook once per variant (every shipped seed of it, or retrained with
    ``train``) and once per knock-out of the full model (over its seeds), ``jobs`` notebooks at a time; returns
    the path of the summary. Without ``variants``: every Table 1 row with a shipped model (all six with
    ``train``). ``fast``: the suite in fast mode and the ablation on the first 100 frames of each val sequence,
    which keeps the 39 evaluations of six rows and seven knock-outs over three seeds within about 10 minutes on 2
    cores; otherwise whole sequences, from ``starts`` starts each (OTB's TRE)."""
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
        label = table1.row_label({"variant": variant, "knockout": knockout})
        folders[label] = fresh_folder(out / "ablation" / label.replace("+", "_"))  # a folder the notebook may empty
        params = common | {"variant": variant, "knockout": knockout, "fast": fast, "starts": starts,
                           "output_dir": str(folders[label]), "train": train and not knockout,
                           "train_steps": train_steps or 0}
        tasks.append((f"{ABLATION} [{label}]", notebooks_dir() / ABLATION, folders[label] / ABLATION, params))
    print(f"running {len(tasks)} notebooks, {jobs} at a time ...", flush=True)
    timings = run_all(tasks, 1 if train else jobs)  # training uses every core itself
    rows = {}
    for folder in folders.values():
        rows |= read_metrics(folder / "eval" / "metrics.json")
    gathered = out / "ablation" / "table1.json"
    gathered.write_text(json.dumps(rows, indent=1))
    timings["10_ablation.ipynb [table]"] = execute(notebooks_dir() / ABLATION, out / "notebooks" / ABLATION,
                                                   common | {"metrics": str(gathered)})
    summary = write_summary(out, rows, timings, FAST_FRAMES if fast else None)
    print(f"summary written to {summary}")
    return summary


def write_summary(out: Path, rows: dict, timings: dict[str, float], frames: int | None = None) -> Path:
    """``summary.md`` and ``ablation.png`` from the gathered rows (``eval`` rows with their recorded set-up),
    tracked on the first ``frames`` frames of each sequence (None: whole sequences)."""
    keys = ("auc", "ao")
    variants = table1.with_seed_means(table1.variant_table(rows), rows)
    tables = {"Table 1 rows (ours, val)": variants}
    seeds = sorted({int(c) for c in variants["seeds"]})
    starts = next(iter(rows.values())).get("starts", 1)
    lines = ["# STIF suite report", "",
             "Executed notebooks are in `notebooks/`; each ablation run's notebook, metrics and figures in "
             "`ablation/` (all rows gathered in `ablation/table1.json`).", "", "## Ablation (Table 1 style)", "",
             f"The shipped lite models (EfficientNet-Lite0, `configs/lite.json` with each row's variant: one recipe "
             f"and budget, {'/'.join(map(str, seeds))} training seeds a row), tracked on "
             f"{f'the first {frames} frames of each' if frames else 'the whole of each'} of the "
             f"{int(variants['sequences'].iloc[0])} `val` sequences, "
             f"{'from frame 0' if starts == 1 else f'from {starts} starts each (OTB temporal robustness evaluation)'}. "
             "Means over seeds and sequences with bootstrap 95% intervals over both; seed sd: the spread of the "
             "seeds' means; d: the paired difference against the baseline on the same sequences, sequences "
             "ahead/behind, * where its interval excludes zero.", "",
             "```", format_comparison(variants, "baseline" if "baseline" in variants.index else None, keys), "```",
             "", "The paper's Table 1 (GOT-10k test, GoogLeNet, 20 epochs of GOT-10k):", "", "```",
             table1.paper_frame().to_string(), "```", ""]
    missing = [v for v in VARIANTS if v not in variants.index]
    if missing:
        lines += [f"Rows without a shipped model, not in this table: {', '.join(missing)} (`--train` retrains "
                  "every row with its recipe).", ""]
    if "baseline" in variants.index and len(variants) > 1:
        lines += ["What our rows show, row by row:", "", *table1.row_sentences(variants, "baseline"), "",
                  "In short: " + table1.resolved_sentence(variants, "baseline"), ""]
    if table1.has_knockouts(rows):
        knocked = table1.with_seed_means(table1.knockout_table(rows), rows)
        tables["knock-outs of the full model"] = knocked
        lines += ["## Knock-outs: the full model with one part switched off at inference", "",
                  "Each knock-out over the full model's seeds, paired by sequence and by seed against the full model "
                  "(a knock-out is its model's twin).", "",
                  "```", format_comparison(knocked, "full", keys), "```", "",
                  *table1.row_sentences(knocked, "full"), "",
                  "In short: " + table1.resolved_sentence(knocked, "full") + " "
                  + table1.trained_without_sentence(rows), ""]
    fig = table1.interval_figure(tables)
    fig.savefig(out / "ablation.png", dpi=90, bbox_inches="tight")
    lines += ["![ablation](ablation.png)", "",
              "What differs from the paper: the data (52 short training clips, against GOT-10k's 9,335 videos), "
              "the budget (1,200 steps on 2 CPU cores per run, against days of GPU), the backbone (Lite0, frozen, "
              "against GoogLeNet) and the benchmark (9 val videos, against 180 GOT-10k test videos). The paper's "
              "gains are at most 0.01 AO: with intervals of the width above, 9 videos cannot resolve them, whatever "
              "the sign of our differences.", "",
              "## Run times", ""] + [f"- {name}: {seconds:.0f} s" for name, seconds in timings.items()]
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path
