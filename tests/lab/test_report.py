"""The ablation summary from the ablation notebooks' eval rows: each row over its seeds, intervals over seeds and
sequences, paired differences, knock-outs."""
import re

import numpy as np
import pandas as pd
import pytest
import torch

from stif_core.config import VARIANTS
from stif_core.lab.report import write_summary
from stif_core.lab.table1 import knockout_table, row_groups
from stif_core.model.knockouts import KNOCKOUTS
from stif_core.paths import project_dir

SEQUENCES = [f"seq{i}" for i in range(9)]
SEED_NOISE = (0.0, 0.01, -0.01)  # three seeds of a row, each shifted by its training luck


def row(scores, variant, knockout=None, seed=0):
    """An eval row as ``table1.evaluate_row`` writes it: per-sequence scores and the recorded set-up."""
    per = {s: {"auc": a, "ao": a, "sr50": a, "sr75": a / 2, "prec20": a} for s, a in zip(SEQUENCES, scores)}
    setup = {"tracker": "stif", "variant": variant, "checkpoint_sha256": f"{variant}-{seed}", "params": "otb",
             "memory_policy": "stmtrack", "engine": "onnx", "seed": seed, "recipe": "r1"}
    return {"per_sequence": per, "overall": {"auc": float(np.mean(scores))},
            "setup": setup | ({"knockout": knockout} if knockout else {})}


def seeds_of(label, scores, knockout=None):
    variant = label.split("-ko-")[0]
    return {f"stif-{label}-s{k}": row(np.asarray(scores) + d, variant, knockout, k) for k, d in enumerate(SEED_NOISE)}


def test_summary_resolves_a_consistent_gain_and_not_noise(tmp_path):
    base = np.linspace(0.2, 0.7, 9)
    noise = np.array([0.05, -0.05] * 4 + [0.0])
    rows = {}
    for v in VARIANTS:
        rows |= seeds_of(v, base + (0.04 if v == "full" else 0.0 if v == "baseline" else noise))
    for k in KNOCKOUTS:  # full: +0.04 on every sequence; mask_empty costs 0.1 on every one
        rows |= seeds_of(f"full-ko-{k}", base + 0.04 - (0.1 if k == "mask_empty" else 0.0), k)
    text = write_summary(tmp_path, rows, {"x": 1.0}).read_text()
    assert "resolved against baseline: full (+0.040); the median width" in text  # the noisy rows are not listed
    assert "resolved against full: full-ko-mask_empty (-0.100)" in text
    assert re.search(r"- ste: [-+]0\.000 \[-0\.03\d, \+0\.03\d\] AUC against baseline, ahead on 4 and behind on 4 of 9 "
                     r"sequences, not resolved: its interval includes zero; the paper: \+0\.002 AO\.", text)
    assert "3 training seeds a row" in text and "the whole of each of the 9" in text
    assert "paper" in text.lower() and (tmp_path / "ablation.png").is_file()
    power = text[text.index("## How much evidence"):]  # the power table of the rows, pooled last
    assert re.search(r"\nrow +ste +sde_q +stif +ste\+sde_q +full +pooled\n", power) and "![power](power.png)" in power
    assert (tmp_path / "power.png").is_file()
    table = knockout_table(rows)
    assert list(table["seeds"].unique()) == [3]
    assert table.loc["full-ko-no_q2m", "trained without it"] == "ste+sde_q"
    assert pd.isna(table.loc["full-ko-mask_empty", "trained without it"])
    assert table.loc["full", "auc_seed_sd"] == pytest.approx(np.std([0.0, 0.01, -0.01], ddof=1))


def test_summary_names_the_rows_it_lacks(tmp_path):
    rows = seeds_of("baseline", np.linspace(0.2, 0.7, 9)) | seeds_of("full", np.linspace(0.25, 0.75, 9))
    text = write_summary(tmp_path, rows, {"x": 1.0}, frames=100).read_text()
    assert "Rows not asked for in this run (`--variants`): ste, sde_q, stif, ste+sde_q" in text
    assert "without a shipped model" not in text  # every row ships
    assert "the first 100 frames of each" in text


def test_rows_pool_as_seeds_only_when_they_differ_in_checkpoint_and_seed():
    rows = seeds_of("full", np.linspace(0.2, 0.7, 9))
    assert row_groups(rows) == {"full": list(rows)}
    other = row(np.linspace(0.2, 0.7, 9), "full", seed=5)
    other["setup"]["engine"] = "torch"
    with pytest.raises(ValueError, match="differ in more than checkpoint and seed"):
        row_groups(rows | {"torch-row": other})
    with pytest.raises(ValueError, match="records no variant"):
        row_groups({"kcf": {"per_sequence": {}, "setup": {"tracker": "kcf"}}})


def test_shipped_variants_are_the_rows_with_weights():
    from stif_core.lab.report import shipped_variants

    assert shipped_variants() == list(VARIANTS)  # every Table 1 row ships, in the table's order


@pytest.mark.slow
def test_notebooks_run_as_tasks_and_a_failure_is_raised(tmp_path):
    import nbformat
    import pytest

    from stif_core.lab.report import execute
    from stif_core.lab.tasks import Task, run_tasks

    def notebook(name, code):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                                             nbformat.v4.new_code_cell(code)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = tmp_path / name
        nbformat.write(nb, path)
        return path

    def task(label, nb, k):
        return Task(label, execute, {"notebook": nb, "output": tmp_path / "out" / f"{k}.ipynb", "parameters": {"x": k}})

    good, bad = notebook("good.ipynb", "print(x + 1)"), notebook("bad.ipynb", "raise ValueError('broken cell')")
    done = run_tasks([task(f"run {k}", good, k) for k in range(3)], use_ray=False)
    assert list(done) == ["run 0", "run 1", "run 2"]
    printed = nbformat.read(tmp_path / "out" / "2.ipynb", as_version=4).cells[-1].outputs[0]["text"]
    assert printed == "3\n"  # x = 2 injected, x + 1 printed
    with pytest.raises(ValueError, match="bad.ipynb failed: ValueError: broken cell"):  # one line naming it
        run_tasks([task("bad", bad, "bad")], use_ray=False)


def test_a_finished_task_is_kept_and_a_changed_one_runs_again(tmp_path, capsys, monkeypatch):
    import shutil

    from stif_core.lab.tasks import Task, ray_installed, run_tasks

    ledger = tmp_path / "tasks.json"
    tasks = [Task(f"t{k}", shutil.which, {"cmd": "python3"}, key={"k": k}) for k in range(2)]
    first = run_tasks(tasks, use_ray=False, ledger=ledger)
    assert [r["value"] for r in first.values()] == [shutil.which("python3")] * 2
    again = run_tasks([tasks[0], Task("t1", shutil.which, {"cmd": "sh"}, key={"k": "changed"})], use_ray=False,
                      ledger=ledger)
    printed = capsys.readouterr().out
    assert "kept: t0" in printed and "kept: t1" not in printed
    assert again["t1"]["value"] == shutil.which("sh")
    with pytest.raises(ValueError, match="--no-ray runs the tasks here"):  # a cluster named, and refused
        run_tasks(tasks, address="10.0.0.1:6379", use_ray=False)
    if ray_installed():  # a head that is not there: refused at once, where Ray retries for minutes
        with pytest.raises(ValueError, match="--address 127.0.0.1:1: no Ray head answers there"):
            run_tasks(tasks, address="127.0.0.1:1")
        with monkeypatch.context() as env, pytest.raises(ValueError, match=r"^\$RAY_ADDRESS 127.0.0.1:2: no Ray"):
            env.setenv("RAY_ADDRESS", "127.0.0.1:2")  # the variable named, not an option the user did not give
            run_tasks(tasks)
    src, out = tmp_path / "fast.ipynb", tmp_path / "out.ipynb"  # a task's output another run then overwrote
    src.write_text("fast")
    writes = Task("nb", shutil.copyfile, {"src": str(src), "dst": str(out)}, key={"fast": True}, output=str(out))
    run_tasks([writes], use_ray=False, ledger=ledger)
    out.write_text("an interrupted --full run's half")
    capsys.readouterr()
    run_tasks([writes], use_ray=False, ledger=ledger)
    assert "kept: nb" not in capsys.readouterr().out and out.read_text() == "fast"
    run_tasks([writes], use_ray=False, ledger=ledger)
    assert "kept: nb" in capsys.readouterr().out
    if ray_installed():  # a task wider than the local Ray would wait for ever: refused before Ray starts
        with pytest.raises(ValueError, match="asks for 2 CPUs .* --jobs 1 gives this machine's Ray 1: give --jobs 2"):
            run_tasks([Task("t3", shutil.which, {"cmd": "sh"}, cpus=2)], cpus=1)
    if not torch.cuda.is_available():  # a GPU task here would wait for ever on a local Ray: refused before it
        gpu = [Task("t2", shutil.which, {"cmd": "sh"}, gpus=1)]
        for use_ray in (False, True):
            with pytest.raises(ValueError, match=r"ask for a GPU each \(--device cuda\) and this machine has none"):
                run_tasks(gpu, use_ray=use_ray)


@pytest.mark.slow
def test_notebooks_run_on_this_interpreter_and_write_into_the_runs_folder(tmp_path, monkeypatch):
    """A kernel named "stif" registered elsewhere (another checkout's, here a broken one) is never used."""
    import json
    import sys

    import nbformat

    from stif_core.lab.report import execute

    decoy = tmp_path / "jupyter" / "kernels" / "stif"
    decoy.mkdir(parents=True)
    (decoy / "kernel.json").write_text(json.dumps({"argv": ["/nonexistent/python", "-f", "{connection_file}"],
                                                   "display_name": "another checkout", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, sys; print(sys.executable); print(os.environ['STIF_OUTPUT'])")])
    nb.metadata["kernelspec"] = {"name": "stif", "display_name": "STIF", "language": "python"}
    nbformat.write(nb, tmp_path / "probe.ipynb")
    execute(tmp_path / "probe.ipynb", tmp_path / "out" / "probe.ipynb", {}, tmp_path / "reports")
    printed = nbformat.read(tmp_path / "out" / "probe.ipynb", as_version=4).cells[0].outputs[0]["text"].split()
    assert printed == [sys.executable, str(tmp_path / "reports")]


@pytest.mark.data
def test_a_sweep_into_a_folder_of_yours_is_refused_before_any_task(tmp_path):
    from stif_core.lab.sweep import sweep

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("mine")
    with pytest.raises(ValueError, match="holds files this package did not write"):
        sweep(str(project_dir() / "configs" / "lite.json"), ["full"], [0], tmp_path / "mine", ["dudek"], steps=1,
              use_ray=False)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["thesis.tex"]
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "mine"


def test_a_file_of_yours_where_a_report_or_sweep_writes_is_refused_before_any_task(tmp_path, capsys):
    """In a folder the tools made, a summary or table the user put there is named before any notebook or training
    runs (not after them); a cluster named with --no-ray is refused before anything is printed."""
    from stif_core.files import output_folder, write_text
    from stif_core.lab.report import run as report
    from stif_core.lab.sweep import sweep

    for name, command in (("summary.md", "report"), ("table1.json", "sweep")):
        out = tmp_path / command
        with output_folder(out, command):
            write_text(out / "tasks.json", "{}")  # a run of the tools' was here
        (out / name).write_text("mine")
        with pytest.raises(ValueError, match=f"{name} exists and was not written by this tool"):
            if command == "report":
                report(out, variants=["full"], use_ray=False)
            else:
                sweep(str(project_dir() / "configs" / "lite.json"), ["full"], [0], out, ["dudek"], steps=1,
                      use_ray=False)
        assert (out / name).read_text() == "mine" and not (out / "train").exists()
    with pytest.raises(ValueError, match="--no-ray runs the tasks here"):
        report(tmp_path / "r2", address="10.0.0.1:6379", use_ray=False)
    assert capsys.readouterr().out == "" and not (tmp_path / "r2").exists()
