"""The main job: every notebook of the suite, then the ablation notebook once per Table 1 row and once per
knock-out of the full model, each evaluating every shipped seed of its row, run through papermill; the rows
gathered into tables over seeds and sequences (``lab.table1``), a figure and ``reports/summary.md``, and
notebook 10 once more to show the gathered table.

``python -m stif_core report [--full] [--train] [--device auto] [--data-root DIR] [--out reports]``
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import papermill as pm
from traitlets.config import Config

from ..config import VARIANTS, parse_variant, variant_name
from ..data.sequences import resolve_root
from ..evaluation.compare import format_comparison
from ..evaluation.results import read_metrics
from ..evaluation.tre import starts_text
from ..files import checked_target, output_folder, outside_data, write_text
from ..model.knockouts import KNOCKOUTS
from ..paths import ENV_OUTPUT, project_dir, row_seeds
from . import table1
from .notebook import FAST_FRAMES
from .sweep import training_tasks
from .tasks import Task, check_where, run_tasks
from .viz import save_png

ABLATION = "10_ablation.ipynb"


def notebooks_dir() -> Path:
    """``<project>/notebooks`` (``stif_core.paths.project_dir``)."""
    folder = project_dir() / "notebooks"
    if not folder.is_dir():
        raise FileNotFoundError(f"no notebooks folder at {folder}; run from the project folder or set $STIF_PROJECT")
    return folder


def suite(ablation: bool = False) -> list[Path]:
    """The teaching notebooks in order; the ablation notebook too when asked (it otherwise runs once per row)."""
    return sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb") if ablation or p.name != ABLATION)


def own_kernel(folder: Path) -> str:
    """A kernel spec in ``folder/kernels`` that runs this interpreter (not whichever environment registered a
    machine-wide kernel last); returns its name."""
    name = f"stif-{os.getpid()}"
    spec = Path(folder) / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        # the kernel's own log off: a stop (Ctrl-C) tears its sockets down under it, which it logs as a traceback;
        # a cell's error still reaches the run, as the notebook's output
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--IPKernelApp.log_level=CRITICAL"],
        "display_name": f"STIF ({sys.executable})", "language": "python"}))
    return name


@contextmanager
def environment(**values: str | None):
    """``os.environ`` with ``values`` set (None: left as it is) for the block, as it was after."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update({k: v for k, v in values.items() if v is not None})
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def check_parameters(notebook: Path, parameters: dict) -> None:
    """Refuse parameter names the notebook's ``parameters`` cell does not define (papermill only warns)."""
    known = pm.inspect_notebook(str(notebook))
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"{notebook.name}: unknown parameter(s) {unknown}; valid: {sorted(known)}")


def execute(notebook: Path, output: Path, parameters: dict, outputs: Path | None = None) -> float:
    """Run one notebook into ``output`` on this interpreter (``own_kernel``), its figures and runs in ``outputs``
    (``$STIF_OUTPUT``; None: as set); returns the seconds it took. The kernel talks over local IPC sockets. A failed
    cell is one line naming the notebook, not two tracebacks."""
    check_parameters(notebook, parameters)
    output = checked_target(output)  # never a link; listed where a run's folder has a manifest
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        ipc = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(folder) / "kernel")}})
        kernel = own_kernel(Path(folder))
        search = os.pathsep.join(filter(None, [folder, os.environ.get("JUPYTER_PATH")]))  # its spec found first
        with environment(JUPYTER_PATH=search, **{ENV_OUTPUT: None if outputs is None else str(outputs)}):
            try:
                pm.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name=kernel,
                                    cwd=str(notebook.parent), progress_bar=False, config=ipc)
            except pm.PapermillExecutionError as err:
                raise ValueError(f"{output.name} failed: {err.ename}: {err.evalue}") from None
    return time.perf_counter() - start


def shipped_variants() -> list[str]:
    """The Table 1 rows that have a shipped model (``paths.row_seeds``), in Table 1's order."""
    return [v for v in VARIANTS if row_seeds(v)]


def tree_stamp(root: Path) -> str:
    """A digest of every file's name, size and modification time under ``root``: it changes when any file does."""
    digest = hashlib.blake2b(digest_size=16)
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            info = os.stat(os.path.join(folder, name))
            digest.update(f"{os.path.relpath(os.path.join(folder, name), root)}:{info.st_size}:{info.st_mtime_ns};"
                          .encode())
    return digest.hexdigest()


def run(out: str | Path = "reports", fast: bool = True, device: str = "auto", data_root: str = "",
        variants: list[str] | None = None, train: bool = False, train_steps: int | None = None,
        knockouts: bool = True, jobs: int = 2, starts: int = 1, address: str | None = None,
        use_ray: bool = True) -> Path:
    """Execute the suite, then the ablation notebook once per variant (every shipped seed of it, or retrained with
    ``train``) and once per knock-out of the full model, each a task (``lab.tasks``: on Ray, ``jobs`` CPUs or the
    cluster at ``address``); returns the path of the summary. ``fast``: the ablation on the first 100 frames of
    each val sequence, which keeps the 39 evaluations of six rows and seven knock-outs over three seeds within
    about 10 minutes on 2 cores."""
    check_where(address, use_ray)
    if variants:
        names = [variant_name(**parse_variant(v)) for v in variants]  # a bad name fails here
    else:
        names = list(VARIANTS) if train else shipped_variants()
        missing = [v for v in VARIANTS if v not in names]
        if missing:
            print(f"Table 1 rows without a shipped model, left out: {missing} (train them with --train, or "
                  "python -m stif_core train --config configs/lite.json --variant <row>)", flush=True)
    root = resolve_root(data_root or None)
    outside_data(out, root, "--out")  # checked before any notebook runs
    with output_folder(out, "report") as out:
        for name in ("summary.md", "ablation.png", "power.png", "tasks.json", "ablation/table1.json"):
            checked_target(out / name)  # a file of the user's there: refused now, not after the notebooks
        checkpoints = {}
        if train:  # one training a row, the recipe's seed: tasks before the notebooks that track them
            runs = training_tasks(str(project_dir() / "configs" / "lite.json"), names, [0], out / "train",
                                  train_steps, str(root), device)
            trained = run_tasks(runs, address, jobs, use_ray)
            checkpoints = {t.kwargs["variant"]: trained[t.label]["value"] for t in runs}
        tasks, folders = notebook_tasks(out, names, fast, device, data_root, checkpoints, knockouts, starts, root)
        print(f"running {len(tasks)} notebooks ...", flush=True)
        done = run_tasks(tasks, address, jobs, use_ray, ledger=out / "tasks.json")
        timings = {label: result["seconds"] for label, result in done.items()}
        rows = {}
        for folder in folders:
            rows |= read_metrics(folder / "eval" / "metrics.json")
        gathered = out / "ablation" / "table1.json"
        write_text(gathered, json.dumps(rows, indent=1))
        timings["10_ablation.ipynb [table]"] = execute(notebooks_dir() / ABLATION, out / "notebooks" / ABLATION,
                                                       {"device": device, "data_root": data_root,
                                                        "metrics": str(gathered)}, out)
        summary = write_summary(out, rows, timings, FAST_FRAMES if fast else None)
    print(f"summary written to {summary}")
    return summary


def notebook_tasks(out: Path, names: list[str], fast: bool, device: str, data_root: str,
                   checkpoints: dict[str, str], knockouts: bool, starts: int, root: Path) -> tuple[list[Task], list]:
    """The suite's notebooks and one ablation run per row (``checkpoints``: a trained one per row, else the shipped
    seeds) and knock-out, each writing into ``out`` (its row's folder ``ablation/<row>/``), as tasks whose key is
    their parameters, the notebook's bytes, the package's and the data's files (``tree_stamp``): a rerun keeps
    each finished one while none of these changed. Returns the tasks and the row folders."""
    common = {"device": device, "data_root": data_root}
    stamps = {"package": tree_stamp(Path(__file__).parents[1]), "data": tree_stamp(root)}
    runs = [(nb.name, nb, out / "notebooks" / nb.name, common | {"fast": fast}) for nb in suite()]
    folders = []
    for variant, knockout in [(v, "") for v in names] + (
            [("full", k) for k in KNOCKOUTS] if knockouts and "full" in names else []):
        label = table1.row_label({"variant": variant, "knockout": knockout})
        folders.append(out / "ablation" / label.replace("+", "_"))
        params = common | {"variant": variant, "knockout": knockout, "fast": fast, "starts": starts,
                           "output_dir": str(folders[-1]), "checkpoint": checkpoints.get(variant, "")}
        runs.append((f"{ABLATION} [{label}]", notebooks_dir() / ABLATION, folders[-1].with_suffix(".ipynb"), params))
    for _, _, output, _ in runs + [(None, None, out / "notebooks" / ABLATION, None)]:
        checked_target(output)  # listed as this run's before a kernel writes it
    digests = {nb: hashlib.sha256(nb.read_bytes()).hexdigest() for nb in {nb for _, nb, _, _ in runs}}
    return [Task(label, execute, {"notebook": nb, "output": output, "parameters": params, "outputs": out},
                 key={"parameters": params, "notebook": digests[nb]} | stamps,
                 output=str(output), gpus=1 if device == "cuda" else 0) for label, nb, output, params in runs], folders


def write_summary(out: Path, rows: dict, timings: dict[str, float], frames: int | None = None) -> Path:
    """``summary.md`` and ``ablation.png`` from the gathered rows, tracked on ``frames`` frames (None: all)."""
    keys = ("auc", "ao")
    variants = table1.with_seed_means(table1.variant_table(rows), rows)
    tables = {"Table 1 rows (ours, val)": variants}
    seeds = sorted({int(c) for c in variants["seeds"]})
    first = next(iter(rows.values()))
    starts = ("from frame 0" if first.get("starts", 1) == 1 else
              f"from {starts_text(first)} starts each (OTB temporal robustness evaluation)")
    lines = ["# STIF suite report", "",
             "Executed notebooks are in `notebooks/`; each ablation run's notebook, metrics and figures in "
             "`ablation/` (all rows gathered in `ablation/table1.json`).", "", "## Ablation (Table 1 style)", "",
             f"The shipped lite models (EfficientNet-Lite0, `configs/lite.json` with each row's variant: one recipe "
             f"and budget, {'/'.join(map(str, seeds))} training seeds a row), tracked on "
             f"{f'the first {frames} frames of each' if frames else 'the whole of each'} of the "
             f"{int(variants['sequences'].iloc[0])} `val` sequences, "
             f"{starts}. "
             "Means over seeds and sequences with bootstrap 95% intervals over both; seed sd: the spread of the "
             "seeds' means; d: the paired difference against the baseline on the same sequences, sequences "
             "ahead/behind, * where its interval excludes zero.", "",
             "```", format_comparison(variants, "baseline" if "baseline" in variants.index else None, keys), "```",
             "", "The paper's Table 1 (GOT-10k test, GoogLeNet, 20 epochs of GOT-10k):", "", "```",
             table1.paper_frame().to_string(), "```", ""]
    unshipped = [v for v in VARIANTS if v not in variants.index and not row_seeds(v)]
    unasked = [v for v in VARIANTS if v not in variants.index and row_seeds(v)]
    if unshipped:
        lines += [f"Rows without a shipped model, not in this table: {', '.join(unshipped)} (`--train` retrains "
                  "every row with its recipe).", ""]
    if unasked:
        lines += [f"Rows not asked for in this run (`--variants`): {', '.join(unasked)}.", ""]
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
    save_png(table1.interval_figure(tables), out / "ablation.png")
    lines += ["![ablation](ablation.png)", "", "## How much evidence would resolve a difference", ""]
    try:
        power = table1.power_table(rows)
    except ValueError as err:
        lines += [f"No power analysis: {err}.", ""]
    else:
        save_png(table1.power_figure(power), out / "power.png")
        lines += ["From the variance components of each row's paired difference against the baseline (seed, sequence, "
                  "left over; notebook 10 explains them): the smallest difference this table, the paper's evidence "
                  "and the paper's evidence with this table's seeds resolve (95%, 80% power), and the sequences "
                  "needed for 0.01, 0.02 and 0.05 AUC.", "", "```", power.T.round(3).to_string(), "```", "",
                  "![power](power.png)", ""]
    lines += [
              "What differs from the paper: the data (52 short training clips, against GOT-10k's 9,335 videos), "
              "the budget (1,200 steps on 2 CPU cores per run, against days of GPU), the backbone (Lite0, frozen, "
              "against GoogLeNet) and the benchmark (9 val videos, against 180 GOT-10k test videos). The paper's "
              "gains are at most 0.01 AO: with intervals of the width above, 9 videos cannot resolve them, whatever "
              "the sign of our differences.", "",
              "## Run times", ""] + [f"- {name}: {seconds:.0f} s" for name, seconds in timings.items()]
    path = out / "summary.md"
    write_text(path, "\n".join(lines) + "\n")
    return path
