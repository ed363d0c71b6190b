"""The package outside a checkout, settings instead of file locations, Sequence.head, and the notebooks' number
checks: they pass within the measured tolerances and fail on a broken equation or the wrong model."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stif_core import paths
from stif_core.config import VARIANTS
from stif_core.data.synthetic import synthetic_clip
from stif_core.evaluation.harness import evaluate
from stif_core.lab import notebook as nb
from stif_core.lab import references
from stif_core.lab.references import forget, pick_notebooks, tolerances, widened
from stif_core.lab.report import execute, notebooks_dir
from stif_core.paths import checkpoint_path, default_data_root, package_file, project_dir, shipped_models
from stif_core.tracking.baselines import make_baseline

ROOT = Path(__file__).resolve().parents[2]  # the project
DATA_ROOT = default_data_root()


def test_head_cuts_every_per_frame_field_and_evaluate_runs_on_it(tmp_path):
    clip = synthetic_clip(120, size=(96, 128), seed=2)
    assert clip.absent.any()  # the pole hides the object in some frames
    cut = clip.head(100)
    assert (len(cut), cut.boxes.shape, cut.absent.shape) == (100, (100, 4), (100,))
    np.testing.assert_array_equal(cut.absent, clip.absent[:100])
    assert clip.head(None) is clip and clip.head(500) is clip
    with pytest.raises(ValueError, match="keep at least 1"):
        clip.head(0)
    report = evaluate({"kcf": lambda: make_baseline("kcf")}, [cut], tmp_path, progress=False)
    assert 0 <= report["kcf"]["per_sequence"][cut.name]["auc"] <= 1


def test_shipped_models_and_packaged_data_resolve_by_name():
    rows = [f"stif_lite_{v.replace('+', '_')}" for v in VARIANTS]  # the six rows, three seeds each
    assert shipped_models() == sorted(rows + [f"{r}_s{k}" for r in rows for k in range(3)])
    assert all(paths.row_seeds(v) == [f"stif_lite_{v.replace('+', '_')}_s{k}" for k in range(3)] for v in VARIANTS)
    path = checkpoint_path("stif_lite_full")
    assert path.is_file() and path.parent.name == "weights"
    assert checkpoint_path(path) == path  # a file path is taken as given
    with pytest.raises(FileNotFoundError, match=r"'nothing': no such file.*shipped: \["):
        checkpoint_path("nothing")
    assert "jogging-1" in json.loads(package_file("otb_attributes.json").read_text())["sequences"]


def test_every_shipped_seed_records_its_row_seed_and_the_one_recipe_and_the_rule_picks_the_notebook_seed():
    """All 18 files: their variant and seed as named, one recipe record for all; each row's name stands for the
    seed with the lowest best val loss (the rule of docs/design.md, section 7)."""
    from stif_core.checkpoint import read_metadata

    recipes = set()
    for v in VARIANTS:
        losses = {}
        for name in paths.row_seeds(v):
            meta = read_metadata(checkpoint_path(name))
            assert (meta["variant"], f"_s{meta['seed']}") == (v, name[name.rindex("_s"):])
            recipes.add(meta["recipe"])
            losses[name] = float(meta["val_loss"])
        assert paths.notebook_seeds()[f"stif_lite_{v.replace('+', '_')}"] == min(losses, key=losses.get)
    assert len(recipes) == 1 and json.loads(recipes.pop())["model"] == {"square_crops": True}


def test_a_row_name_stands_for_its_notebook_seed_where_seeds_ship(tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in ("stif_lite_full_s0", "stif_lite_full_s1", "stif_lite_full_s10", "stif_lite_baseline"):
        (weights / f"{name}.safetensors").write_bytes(b"")
    (weights / "notebook_seeds.json").write_text(json.dumps({"stif_lite_full": "stif_lite_full_s1"}))
    monkeypatch.setattr(paths, "package_path", lambda *parts: tmp_path.joinpath(*parts))
    assert paths.shipped_models() == ["stif_lite_baseline", "stif_lite_full", "stif_lite_full_s0",
                                      "stif_lite_full_s1", "stif_lite_full_s10"]
    assert paths.checkpoint_path("stif_lite_full") == weights / "stif_lite_full_s1.safetensors"
    assert paths.checkpoint_path("stif_lite_full_s0") == weights / "stif_lite_full_s0.safetensors"
    assert paths.row_seeds("full") == ["stif_lite_full_s0", "stif_lite_full_s1", "stif_lite_full_s10"]  # by number
    assert paths.row_seeds("baseline") == ["stif_lite_baseline"] and paths.row_seeds("ste") == []


def test_places_come_from_settings_and_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("STIF_PROJECT", raising=False)
    monkeypatch.delenv("STIF_DATA_ROOT", raising=False)
    (tmp_path / "proj" / "notebooks").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "sequences").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "proj" / "notebooks")
    assert project_dir() == tmp_path / "proj"
    assert default_data_root() == tmp_path / "shared" / "data" / "sequences"
    monkeypatch.setenv("STIF_PROJECT", str(tmp_path / "elsewhere"))
    assert project_dir() == tmp_path / "elsewhere"


def test_check_records_and_holds_values_to_their_references(tmp_path, monkeypatch):
    record = tmp_path / "values.jsonl"
    monkeypatch.setenv(nb.ENV_RECORD, str(record))
    assert nb.check("a", 0.5) is None  # nothing for a cell to show
    nb.check("b", float("nan"))
    runs = {"plain": {"a": 0.5, "b": float("nan"), "c": 2.0}, "other": {"a": 0.53, "b": float("nan"), "c": 2.0},
            "third": {"a": 0.49, "b": float("nan"), "c": float("nan")}}
    table = tolerances(runs)
    assert table["a"]["spread"] == pytest.approx(0.03) and table["a"]["tol"] == pytest.approx(0.09)  # 3 x spread
    assert table["b"]["tol"] == pytest.approx(1e-3) and table["a"]["moved_in"] == ["other", "third"]
    assert table["c"]["tol"] == float("inf")  # NaN under one configuration: no finite tolerance
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps({"values": table}))
    monkeypatch.delenv(nb.ENV_RECORD)
    monkeypatch.setenv(nb.ENV_CHECK, str(refs))
    nb.check("a", 0.42)
    nb.check("b", float("nan"))
    nb.check("c", float("nan"))
    with pytest.raises(nb.CheckError, match=r"a = 0.6, outside the stored 0.5 \+- 0.09"):
        nb.check("a", 0.6)
    with pytest.raises(nb.CheckError, match=r"b = 0.1, outside the stored nan"):
        nb.check("b", 0.1)
    with pytest.raises(nb.CheckError, match="no stored reference for 'd'"):
        nb.check("d", 1.0)
    assert [json.loads(line)["key"] for line in record.read_text().splitlines()] == ["a", "b"]


def test_a_real_cpu_widens_only_the_tolerances_it_moves_further():
    """references --widen: a key that this CPU moves by d gets tolerance max(old, 3 d); none shrinks."""
    table = {"01 a": {"value": 0.5, "tol": 0.03, "spread": 0.01, "moved_in": ["all-sse"]},
             "01 b": {"value": 2.0, "tol": 0.002, "spread": 0.0, "moved_in": []},
             "01 c": {"value": 1.0, "tol": 0.1, "spread": 0.02, "moved_in": ["mkl-avx"]}}
    widened(table, {"01 a": 0.47, "01 b": 2.0, "01 c": 1.01}, "zen5")
    assert table["01 a"]["tol"] == pytest.approx(0.09) and table["01 a"]["spread"] == pytest.approx(0.03)
    assert table["01 a"]["moved_in"] == ["all-sse", "zen5"]
    assert table["01 b"] == {"value": 2.0, "tol": 0.002, "spread": 0.0, "moved_in": []}
    assert table["01 c"]["tol"] == 0.1 and table["01 c"]["spread"] == 0.02  # 3 x 0.01 < 0.1: kept


@pytest.mark.parametrize("stop, status, err", [(ValueError("01_x.ipynb failed: NameError: y"), 1,
                                                 "[plain] error: 01_x.ipynb failed: NameError: y\n"),
                                                (KeyboardInterrupt(), 130, "")])
def test_a_configuration_that_fails_or_is_stopped_exits_with_a_line_not_a_traceback(monkeypatch, capsys, tmp_path,
                                                                                      stop, status, err):
    """The process of one configuration: its parent names the folder and says what was kept."""
    def execute(*args):
        raise stop

    monkeypatch.setattr(references, "execute", execute)
    with pytest.raises(SystemExit) as ended:
        references.run_config("plain", str(tmp_path), "01_x.ipynb")
    assert ended.value.code == status and capsys.readouterr().err == err


def test_a_partial_study_re_measures_only_the_chosen_notebooks(tmp_path):
    """``references --notebooks 02``: the other configurations forget 02's keys; its spread comes from the
    configurations that re-measured it, which are listed; a full study still requires every key everywhere."""
    chosen = pick_notebooks(["02"])
    assert [p.name for p in chosen] == ["02_backbone_memory.ipynb"]
    with pytest.raises(ValueError, match="no notebook matches"):
        pick_notebooks(["99"])
    values = tmp_path / "values.jsonl"
    values.write_text("".join(json.dumps({"key": k, "value": 1.0}) + "\n" for k in ("01 x", "02 y", "02 z")))
    forget(values, chosen)
    assert [json.loads(line)["key"] for line in values.read_text().splitlines()] == ["01 x"]
    runs = {"plain": {"01 x": 1.0, "02 y": 2.0}, "other": {"01 x": 1.01}, "third": {"01 x": 1.0, "02 y": 2.1}}
    table = tolerances(runs, partial=True)
    assert table["02 y"]["measured_in"] == ["plain", "third"] and table["02 y"]["spread"] == pytest.approx(0.1)
    assert "measured_in" not in table["01 x"]
    with pytest.raises(ValueError, match="not recorded under"):
        tolerances(runs)


def test_notebooks_open_on_the_project_kernel():
    for path in notebooks_dir().glob("*.ipynb"):
        assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == "stif", path.name


WRONG_AXIS = '''import math
import torch.nn.functional as F
import stif_core.model.enhance as enhance


def softmax_over_the_wrong_axis(memory, granularity="frame", similarity="dot", include_initial=False):
    c = memory.shape[2]
    if similarity == "scaled_cosine":
        memory = F.normalize(memory, dim=2) * math.sqrt(c)
    sim = (memory * memory[:, :1]).sum(2) / math.sqrt(c)
    if granularity == "frame":
        sim = sim.mean((-2, -1))
    return sim.softmax(dim=0)  # eq. 3 broken on purpose: over the batch, not the memory frames


enhance.temporal_weights = softmax_over_the_wrong_axis
'''


def checked_run(tmp_path, monkeypatch, notebook: str, parameters: dict, inject: str | None = None):
    """Run a copy of a notebook (outside the project) with its key numbers held to the stored references."""
    source = json.loads((notebooks_dir() / notebook).read_text())
    if inject:
        at = next(i for i, c in enumerate(source["cells"]) if "nb.setup(" in "".join(c["source"])) + 1
        source["cells"].insert(at, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                    "source": inject, "id": "broken"})
    copy = tmp_path / notebook
    copy.write_text(json.dumps(source))
    monkeypatch.setenv(nb.ENV_CHECK, str(notebooks_dir() / "reference_values.json"))
    monkeypatch.setenv("STIF_DATA_ROOT", str(DATA_ROOT))
    monkeypatch.setenv("STIF_OUTPUT", str(tmp_path))
    execute(copy, tmp_path / "out.ipynb", parameters)


@pytest.mark.data
def test_checks_fail_on_a_broken_equation(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"CheckError: 06 .* outside the stored"):
        checked_run(tmp_path, monkeypatch, "06_head_losses.ipynb", {}, inject=WRONG_AXIS)


@pytest.mark.data
def test_checks_fail_on_the_baseline_checkpoint(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"CheckError: 06 .* outside the stored"):
        checked_run(tmp_path, monkeypatch, "06_head_losses.ipynb", {"checkpoint": "stif_lite_baseline"})


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.data
def test_installed_package_runs_outside_the_checkout(tmp_path):
    """``pip install .`` (no checkout on sys.path), then demo, eval by shipped name and a notebook, run from
    another folder."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(ROOT)], check=True)
    work = tmp_path / "work"
    (work / "notebooks").mkdir(parents=True)
    unset = ("STIF_PROJECT", "STIF_OUTPUT", "STIF_NB_CHECK", "STIF_NB_RECORD")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env |= {"PYTHONPATH": str(site), "STIF_DATA_ROOT": str(DATA_ROOT)}

    def run(*args):
        return subprocess.run([sys.executable, *args], cwd=work, env=env, check=True, capture_output=True,
                              text=True).stdout

    assert run("-c", "import stif_core; print(stif_core.__file__)").startswith(str(site))
    assert "parameters" in run("-m", "stif_core", "demo", "--preset", "lite")
    out = run("-m", "stif_core", "eval", "--sequences", "deer", "--checkpoint", "stif_lite_full",
              "--out", str(work / "eval"))
    assert "stif-full" in out and (work / "eval" / "metrics.json").is_file()
    tour = json.loads((notebooks_dir() / "01_tour.ipynb").read_text())
    (work / "notebooks" / "01_tour.ipynb").write_text(json.dumps(tour))
    run("-m", "papermill", "notebooks/01_tour.ipynb", "notebooks/out.ipynb", "-k", "python3", "-p", "fast", "True",
        "--cwd", "notebooks")
    assert (work / "figures" / "tour_boxes.png").is_file()  # figures land in the working project, not the checkout


@pytest.mark.subprocess
def test_the_library_imports_nothing_of_the_lab_and_the_config_nothing_of_the_model():
    """The model, data, tracking, training and evaluation import without the project's tooling; the config that
    the model is built from sits below it (it imports no module of the model)."""
    import ast

    import stif_core.config

    tree = ast.parse(Path(stif_core.config.__file__).read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imported if m and m.startswith("model")], imported
    library = ["stif_core", "stif_core.train", "stif_core.checkpoint", "stif_core.tracking.tracker",
               "stif_core.tracking.baselines", "stif_core.evaluation.trackers", "stif_core.evaluation.compare",
               "stif_core.data.sampling", "stif_core.model.readings", "stif_core.model.knockouts"]
    code = (f"import importlib, sys\nfor name in {library!r}: importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.startswith('stif_core.lab')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert run.returncode == 0 and run.stdout.strip() == "[]", (run.stdout, run.stderr)
