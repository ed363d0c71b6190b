"""The spread study behind nbval's tolerances: ``python -m stif_core references [--store]``.

Runs every notebook (default parameters, fast mode) under configurations that make this CPU compute as other
x86-64 CPUs do: oneDNN, MKL and ATen capped to older instruction sets, and 2 threads instead of 1. Each run
records the values of ``nb.check``. A key's reference is its value in the plain configuration; its tolerance is
``TOL_FACTOR`` times the largest distance from it seen in any configuration (a handful of configurations sample
the spread of a chaotic number sparsely: hence a factor of 3), and at least ``floor`` (one unit of the third
decimal the notebooks print, relative above 1). A key that is NaN in some configurations and not in others has
no finite tolerance: it is listed, and its check accepts anything. The cells' printed text, numbers masked as
nbval masks them (``notebooks/nbval_sanitize.cfg``), is compared across configurations too; cells that still
differ are listed: they need an ``nbval-ignore-output`` tag.

Writes ``notebooks/reference_values.json`` and ``<out>/spread.md``; ``--store`` also copies the plain run's
executed notebooks over the sources (the stored outputs that nbval compares with). ``--notebooks 02 08`` re-runs
only those notebooks inside the complete runs already in ``--out``, their keys then measured in the named
configurations only; ``--restore`` and ``--widen``: see ``restore`` and ``widen``.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..files import check_name, fresh_folder, read_json, write_text
from ..paths import ENV_OUTPUT
from .notebook import ENV_CHECK, ENV_RECORD, ENV_THREADS
from .report import environment as environ_with
from .report import execute, notebooks_dir, suite

CONFIGS = {
    "plain": {},
    "threads-2": {ENV_THREADS: "2"},
    "onednn-avx": {"ONEDNN_MAX_CPU_ISA": "AVX"},
    "onednn-sse41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
    "mkl-avx": {"MKL_ENABLE_INSTRUCTIONS": "AVX"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "all-sse": {"ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ATEN_CPU_CAPABILITY": "default"},
    "opencv-sse3": {"OPENCV_CPU_DISABLE": "SSE4.1,SSE4.2,AVX,FP16,AVX2"},  # CSRT, KCF and the crops' SIMD paths
}
TOL_FACTOR = 3.0
REFERENCE_FILE = "reference_values.json"
SANITIZE_FILE = "nbval_sanitize.cfg"


def floor(value: float) -> float:
    """The smallest tolerance: one unit of the third printed decimal, relative for values above 1."""
    return 1e-3 * max(1.0, abs(value))


def environment(name: str, folder: Path) -> dict[str, str]:
    """The variables of a configuration's run (a name outside ``CONFIGS``: this machine as it is)."""
    env = os.environ | CONFIGS.get(name, {}) | {ENV_RECORD: str(folder / "values.jsonl")}
    env.pop(ENV_CHECK, None)
    if name != "plain":
        env[ENV_OUTPUT] = str(folder)  # figures of other configurations land beside their run
    return env


def run_config(name: str, folder: str, *notebooks: str) -> None:
    """Execute notebooks into ``folder`` (in a process started with the configuration's variables). A failed
    notebook is one line and exit status 1, a Ctrl-C status 130 (the parent says what was kept), not a traceback."""
    try:
        for notebook in map(Path, notebooks):
            print(f"[{name}] {notebook.name}", flush=True)
            execute(notebook, Path(folder) / notebook.name, {})
    except (ValueError, OSError) as err:
        print(f"[{name}] error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def start_config(name: str, out: Path, notebooks: list[Path] | None = None) -> tuple[subprocess.Popen, Path]:
    """A process running the whole suite (or only ``notebooks``, inside a complete earlier run) under ``name``."""
    folder = out / name
    if notebooks is None:
        fresh_folder(folder)
    else:
        forget(folder / "values.jsonl", notebooks)
    code = "import sys; from stif_core.lab.references import run_config; run_config(*sys.argv[1:])"
    paths = [str(p) for p in (notebooks or suite(ablation=True))]
    return subprocess.Popen([sys.executable, "-c", code, name, str(folder), *paths],
                            env=environment(name, folder)), folder


def prefix(notebook: Path) -> str:
    """The key prefix of a notebook's checks: "02 " for 02_backbone_memory.ipynb."""
    return notebook.name.split("_")[0] + " "


def forget(values: Path, notebooks: list[Path]) -> None:
    """Drop the recorded keys of ``notebooks`` from a run's values (about to be re-measured)."""
    if values.is_file():
        keep = [line for line in values.read_text().splitlines()
                if not json.loads(line)["key"].startswith(tuple(prefix(nb) for nb in notebooks))]
        write_text(values, "".join(line + "\n" for line in keep))


def pick_notebooks(selected: list[str]) -> list[Path]:
    """Suite notebooks by number or name ("02", "08_training")."""
    found = [nb for nb in suite(ablation=True) if any(nb.name.startswith(s) for s in selected)]
    unmatched = [s for s in selected if not any(nb.name.startswith(s) for nb in found)]
    if unmatched:
        raise ValueError(f"no notebook matches {unmatched}; notebooks: {[nb.name for nb in suite(ablation=True)]}")
    return found


def read_values(path: Path) -> dict[str, float]:
    values = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row["key"] in values:
            raise ValueError(f"{path}: key {row['key']!r} recorded twice; keys must be unique")
        values[row["key"]] = row["value"]
    return values


def distance(a: float, b: float) -> float:
    if math.isnan(a) and math.isnan(b):
        return 0.0
    return abs(a - b) if not (math.isnan(a) or math.isnan(b)) else math.inf


def tolerances(runs: dict[str, dict[str, float]], partial: bool = False) -> dict[str, dict]:
    """{key: value, tol, spread} from the values of every configuration (the plain one is the reference).
    ``partial``: a key may lack from some configurations; its spread is taken over those that hold it."""
    plain = runs["plain"]
    table = {}
    for key, value in plain.items():
        missing = [c for c, values in runs.items() if key not in values]
        if missing and not partial:
            raise ValueError(f"key {key!r} was not recorded under {missing}")
        measured = {c: values for c, values in runs.items() if key in values}
        spread = max(distance(values[key], value) for values in measured.values())
        table[key] = {"value": value, "tol": max(TOL_FACTOR * spread, floor(value)), "spread": spread,
                      "moved_in": sorted(c for c, values in measured.items() if distance(values[key], value) > 0)}
        if missing:
            table[key]["measured_in"] = sorted(measured)
    return table


def sanitizers(path: Path) -> list[tuple[re.Pattern, str]]:
    """The (regex, replacement) pairs of an nbval sanitize file, read as nbval reads them."""
    from nbval.plugin import get_sanitize_patterns

    return [(re.compile(r), s) for r, s in get_sanitize_patterns(path.read_text())]


def cell_texts(notebook: Path, rules: list[tuple[re.Pattern, str]]) -> dict[int, str]:
    """Sanitized text outputs of the code cells nbval compares, by cell index."""
    texts = {}
    for i, cell in enumerate(json.loads(notebook.read_text())["cells"]):
        if cell["cell_type"] != "code" or "nbval-ignore-output" in cell["metadata"].get("tags", []):
            continue
        text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                       for o in cell.get("outputs", []))
        for pattern, replacement in rules:
            text = pattern.sub(replacement, text)
        texts[i] = text
    return texts


def text_differences(out: Path, names: list[str], rules, notebooks: list[Path] | None = None) -> list[str]:
    """'notebook cell i (configs)' for every cell whose sanitized text differs from the plain run's."""
    found = []
    for notebook in notebooks or suite(ablation=True):
        plain = cell_texts(out / "plain" / notebook.name, rules)
        for i, text in plain.items():
            moved = [c for c in names if cell_texts(out / c / notebook.name, rules).get(i) != text]
            if moved:
                found.append(f"{notebook.name} cell {i} ({', '.join(moved)})")
    return found


def report(table: dict[str, dict], texts: list[str], names: list[str]) -> str:
    lines = ["# Spread of the notebooks' key numbers across CPU configurations", "",
             "Configurations: " + "; ".join(f"`{n}` {CONFIGS[n] or '(this CPU as it is, 1 thread)'}" for n in names),
             "", f"Tolerance = max({TOL_FACTOR:g} x spread, floor); spread = largest distance from the plain run.", "",
             "| key | plain | spread | tolerance | moved in |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {r['value']:.6g} | {r['spread']:.3g} | {r['tol']:.3g} | {', '.join(r['moved_in'])} |"
              for k, r in table.items()]
    lines += ["", "Cells whose text (floats masked) differs between configurations:", ""]
    lines += [f"- {t}" for t in texts] or ["- none"]
    return "\n".join(lines) + "\n"


def complete(folder: Path, besides: list[Path] | None = None) -> bool:
    """Whether a configuration's folder holds the whole suite's run (but for ``besides``, about to be run)."""
    names = {nb.name for nb in besides or []}
    return (folder / "values.jsonl").is_file() and all((folder / nb.name).is_file()
                                                        for nb in suite(ablation=True) if nb.name not in names)


def restore(notebooks: list[str], out: str | Path = "runs/spread") -> None:
    """Re-execute ``notebooks`` (plain configuration) with every check held to the stored references, then store
    their outputs; the executed copies also replace the plain run's in ``out``."""
    chosen = pick_notebooks(notebooks)
    folder = Path(out).resolve() / "plain"
    if not folder.is_dir():  # made as the tools make a folder (a manifest), so that a later study may empty it
        fresh_folder(folder)
    with environ_with(**{ENV_CHECK: str(notebooks_dir() / REFERENCE_FILE)}):  # the kernels inherit it
        for notebook in chosen:
            print(f"[restore] {notebook.name}", flush=True)
            try:
                execute(notebook, folder / notebook.name, {})
            except ValueError as err:  # one line naming the notebook (``execute``'s); its stored copy unchanged
                raise ValueError(f"{err} (executed copy: {folder / notebook.name})") from None
            shutil.copyfile(folder / notebook.name, notebook)


def widened(table: dict[str, dict], here: dict[str, float], label: str) -> dict[str, dict]:
    """``table`` with each key's spread and tolerance grown, in place, by the distance of ``here``'s value from the
    stored one (tolerance ``TOL_FACTOR`` times it, never shrunk)."""
    for key, row in table.items():
        if key in here:
            d = distance(here[key], row["value"])
            row["spread"], row["tol"] = max(row["spread"], d), max(row["tol"], TOL_FACTOR * d)
            if d > 0:
                row["moved_in"] = sorted(set(row["moved_in"]) | {label})
    return table


def widen(label: str, notebooks: list[str] | None = None, out: str | Path = "runs/spread") -> Path:
    """Run the suite (or ``notebooks``) on this machine as it is and widen the stored tolerances by what it moves
    (``widened``), recording the machine as configuration ``label``: for a real CPU the configurations cannot
    emulate (they cap instruction sets, so an AVX2 machine never shows AVX-512's rounding)."""
    check_name(label, "--widen label")
    path = notebooks_dir() / REFERENCE_FILE
    stored = read_json(path, "reference file")
    if label in stored["configurations"]:
        raise ValueError(f"configuration {label!r} is already in {path}; give this machine another label")
    chosen = pick_notebooks(notebooks) if notebooks else suite(ablation=True)
    out = Path(out).resolve()
    fresh_folder(out / label)
    process, folder = start_config(label, out, chosen)
    if process.wait() != 0:
        raise ChildProcessError(f"the suite failed on this machine ({folder})")
    widened(stored["values"], read_values(folder / "values.jsonl"), label)
    stored["configurations"][label] = {"machine": "this CPU, as it is", "notebooks": [nb.name for nb in chosen]}
    write_text(path, json.dumps(stored, indent=1) + "\n")
    print(f"tolerances widened in {path} with {label}'s values ({folder / 'values.jsonl'})")
    return path


def run(out: str | Path = "runs/spread", names: list[str] | None = None, jobs: int = 2, store: bool = False,
        reuse: bool = False, notebooks: list[str] | None = None) -> Path:
    """The study; returns the path of the reference file. ``reuse``: run only the configurations without a complete
    run in ``out``; ``notebooks``: see the module docstring."""
    names = names or list(CONFIGS)
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown or "plain" not in names:
        raise ValueError(f"configurations {names}: unknown {unknown}; 'plain' is required; valid: {list(CONFIGS)}")
    out = Path(out).resolve()
    chosen = pick_notebooks(notebooks) if notebooks else None
    everyone = names
    if chosen:
        everyone = [n for n in CONFIGS if complete(out / n, chosen)]
        if not set(names) <= set(everyone):
            missing = sorted(set(names) - set(everyone))
            raise ValueError(f"--notebooks re-runs inside complete runs; {out} lacks {missing}")
        for n in set(everyone) - set(names):
            forget(out / n / "values.jsonl", chosen)
    todo = [n for n in names if chosen or not (reuse and complete(out / n))]
    single = [n for n in todo if ENV_THREADS not in CONFIGS[n]]
    batches = [single[i:i + jobs] for i in range(0, len(single), jobs)]
    batches += [[n] for n in todo if n not in single]  # several threads each: alone, or OpenMP spin-waits
    for batch in batches:  # a process per configuration, with its own variables
        runs = [start_config(n, out, chosen) for n in batch]
        failed = [str(folder) for process, folder in runs if process.wait() != 0]
        if failed:
            raise ChildProcessError(f"the suite failed under {failed}")
    table = tolerances({n: read_values(out / n / "values.jsonl") for n in everyone}, partial=bool(chosen))
    texts = text_differences(out, names, sanitizers(notebooks_dir() / SANITIZE_FILE), chosen)
    write_text(out / "spread.md", report(table, texts, everyone))
    path = notebooks_dir() / REFERENCE_FILE
    write_text(path, json.dumps({"configurations": {n: CONFIGS[n] for n in everyone}, "tol_factor": TOL_FACTOR,
                                 "values": table}, indent=1) + "\n")
    if store:
        for notebook in suite(ablation=True):
            shutil.copyfile(out / "plain" / notebook.name, notebook)
    print(f"references written to {path}; the spread study in {out / 'spread.md'}")
    return path
