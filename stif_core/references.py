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
executed notebooks over the sources (the stored outputs that nbval compares with).
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

from .notebook import ENV_RECORD, ENV_THREADS
from .paths import ENV_OUTPUT
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
    """The variables of a configuration's run: its caps, where ``check`` records, where figures go."""
    env = os.environ | CONFIGS[name] | {ENV_RECORD: str(folder / "values.jsonl")}
    if name != "plain":
        env[ENV_OUTPUT] = str(folder)  # figures of other configurations land beside their run
    return env


def run_config(name: str, folder: str, *notebooks: str) -> None:
    """Execute notebooks into ``folder`` (in a process started with the configuration's variables)."""
    for notebook in map(Path, notebooks):
        print(f"[{name}] {notebook.name}", flush=True)
        execute(notebook, Path(folder) / notebook.name, {})


def start_config(name: str, out: Path) -> tuple[subprocess.Popen, Path]:
    folder = out / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    code = "import sys; from stif_core.references import run_config; run_config(*sys.argv[1:])"
    notebooks = [str(p) for p in suite(ablation=True)]
    return subprocess.Popen([sys.executable, "-c", code, name, str(folder), *notebooks],
                            env=environment(name, folder)), folder


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


def tolerances(runs: dict[str, dict[str, float]]) -> dict[str, dict]:
    """{key: value, tol, spread} from the values of every configuration (the plain one is the reference)."""
    plain = runs["plain"]
    table = {}
    for key, value in plain.items():
        missing = [c for c, values in runs.items() if key not in values]
        if missing:
            raise ValueError(f"key {key!r} was not recorded under {missing}")
        spread = max(distance(values[key], value) for values in runs.values())
        table[key] = {"value": value, "tol": max(TOL_FACTOR * spread, floor(value)), "spread": spread,
                      "moved_in": sorted(c for c, values in runs.items() if distance(values[key], value) > 0)}
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


def text_differences(out: Path, names: list[str], rules) -> list[str]:
    """'notebook cell i (configs)' for every cell whose sanitized text differs from the plain run's."""
    found = []
    for notebook in suite(ablation=True):
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


def complete(folder: Path) -> bool:
    """Whether a configuration's folder holds the whole suite's run."""
    return (folder / "values.jsonl").is_file() and all((folder / nb.name).is_file() for nb in suite(ablation=True))


def run(out: str | Path = "runs/spread", names: list[str] | None = None, jobs: int = 2, store: bool = False,
        reuse: bool = False) -> Path:
    """The study; returns the path of the reference file. ``reuse``: keep the complete runs already in ``out``
    and run only the missing configurations."""
    names = names or list(CONFIGS)
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown or "plain" not in names:
        raise ValueError(f"configurations {names}: unknown {unknown}; 'plain' is required; valid: {list(CONFIGS)}")
    out = Path(out).resolve()
    todo = [n for n in names if not (reuse and complete(out / n))]
    single = [n for n in todo if ENV_THREADS not in CONFIGS[n]]
    batches = [single[i:i + jobs] for i in range(0, len(single), jobs)]
    batches += [[n] for n in todo if n not in single]  # several threads each: alone, or OpenMP spin-waits
    for batch in batches:  # a process per configuration, with its own variables
        runs = [start_config(n, out) for n in batch]
        failed = [str(folder) for process, folder in runs if process.wait() != 0]
        if failed:
            raise RuntimeError(f"the suite failed under {failed}")
    table = tolerances({n: read_values(out / n / "values.jsonl") for n in names})
    texts = text_differences(out, names, sanitizers(notebooks_dir() / SANITIZE_FILE))
    (out / "spread.md").write_text(report(table, texts, names))
    path = notebooks_dir() / REFERENCE_FILE
    path.write_text(json.dumps({"configurations": {n: CONFIGS[n] for n in names}, "tol_factor": TOL_FACTOR,
                                "values": table}, indent=1) + "\n")
    if store:
        for notebook in suite(ablation=True):
            shutil.copyfile(out / "plain" / notebook.name, notebook)
    print(f"references written to {path}; the spread study in {out / 'spread.md'}")
    return path
