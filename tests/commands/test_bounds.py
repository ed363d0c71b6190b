"""Every number a user gives is bounded before any work: the command line's options at parse time (one usage
error naming the option, the value and the bound), the option sections' numbers by their finite ranges, and the
search size by an absolute bound and by the memory its step needs."""
import builtins
from dataclasses import fields
from types import SimpleNamespace

import pytest
import torch

import stif_core
from stif_core.__main__ import main
from stif_core.commands import COMMANDS
from stif_core.config import MODEL_RANGES, ModelConfig, make_config
from stif_core.data.sampling import SAMPLING_RANGES, SamplingConfig
from stif_core.options import MAX_JOBS
from stif_core.paths import default_data_root, project_dir
from stif_core.tracking import search
from stif_core.tracking.search import SearchRegion, check_fits
from stif_core.tracking.tracker import STIFTracker
from stif_core.train import OPTION_RANGES, TrainConfig

GIB = 2**30


@pytest.fixture
def parsed(monkeypatch):
    """Every command's ``run`` replaced by one that records its arguments: an option that passes parsing does no
    work here, and the test sees what it parsed to."""
    seen = []
    for command in COMMANDS:
        monkeypatch.setattr(command, "run", seen.append)
    return seen


@pytest.mark.parametrize("args, message", [
    (["eval", "--baselines", "kcf", "--starts", "1000000000", "--out", "x"],
     "argument --starts: 1000000000 is not an integer in [1, 100]"),
    (["report", "--starts", "101"], "argument --starts: 101 is not an integer in [1, 100]"),
    (["eval", "--checkpoint", "stif_lite_full", "--search-size", "16161", "--out", "x"],
     "argument --search-size: 16161 is not an integer in [1, 4096]"),
    (["bench", "--search-size", "0"], "argument --search-size: 0 is not an integer in [1, 4096]"),
    (["track", "v.mp4", "--search-size", "4097"], "argument --search-size: 4097 is not an integer in [1, 4096]"),
    (["track", "v.mp4", "--fps", "nan"], "argument --fps: nan is not a number in [0.01, 1000]"),
    (["clip", "s", "o.mp4", "--fps", "inf"], "argument --fps: inf is not a number in [0.01, 1000]"),
    (["clip", "s", "o.mp4", "--fps", "0"], "argument --fps: 0 is not a number in [0.01, 1000]"),
    (["clip", "s", "o.mp4", "--fps", "-1"], "argument --fps: -1 is not a number in [0.01, 1000]"),
    (["clip", "s", "o.mp4", "--fps", "1e300"], "argument --fps: 1e300 is not a number in [0.01, 1000]"),
    (["clip", "s", "o.mp4", "--fps", "0.001"], "argument --fps: 0.001 is not a number in [0.01, 1000]"),
    (["clip", "s", "o.mp4", "--frames", "10000001"], "argument --frames: 10000001 is not an integer in [1, 10000000]"),
    (["bench", "--frames", "0"], "argument --frames: 0 is not an integer in [1, 10000000]"),
    (["bench", "--rounds", "101"], "argument --rounds: 101 is not an integer in [1, 100]"),
    (["bench", "--rounds", "three"], "argument --rounds: three is not an integer in [1, 100]"),
    (["report", "--jobs", "100000"], f"argument --jobs: 100000 is not an integer in [1, {MAX_JOBS}] (4 per CPU core)"),
    (["sweep", "--out", "x", "--variants", "full,bogus"],
     "argument --variants: 'full,bogus': give one or more of baseline, ste, sde_q, stif, ste+sde_q, full "
     "(unknown: bogus)"),
    (["sweep", "--out", "x", "--seeds", "0"], "argument --seeds: 0 is not an integer in [1, 1000]"),
    (["sweep", "--out", "x", "--variants", "full,ste,full"], "argument --variants: 'full,ste,full' names full more "
                                                            "than once"),
    (["references", "--jobs", "0"], f"argument --jobs: 0 is not an integer in [1, {MAX_JOBS}] (4 per CPU core)"),
    (["report", "--train-steps", "1e9"], "argument --train-steps: 1e9 is not an integer in [1, 10000000]"),
    (["train", "--config", "c.json", "--steps", "10000001"],
     "argument --steps: 10000001 is not an integer in [1, 10000000]"),
    (["train", "--config", "c.json", "--stop-at", "0"], "argument --stop-at: 0 is not an integer in [1, 10000000]"),
    (["train", "--config", "c.json", "--seed", "-1"], "argument --seed: -1 is not an integer in [0, 2147483647]"),
    (["cache", "--config", "c.json", "--seed", "2147483648"],
     "argument --seed: 2147483648 is not an integer in [0, 2147483647]"),
    (["cache", "--config", "c.json", "--steps", "0"], "argument --steps: 0 is not an integer in [1, 10000000]"),
    (["health", "--samples", "1001"], "argument --samples: 1001 is not an integer in [1, 1000]"),
    (["compare", "--metrics", "m.json", "--keys", ""],
     "argument --keys: '': give one or more of auc, ao, sr50, sr75, prec20"),
    (["compare", "--metrics", "m.json", "--keys", "auc,AO"],
     "argument --keys: 'auc,AO': give one or more of auc, ao, sr50, sr75, prec20 (unknown: AO)"),
])
def test_an_option_out_of_its_bound_is_one_usage_error(parsed, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.endswith(f"error: {message}\n") and not parsed, err
    assert "Traceback" not in err


@pytest.mark.parametrize("args, name, value", [
    (["eval", "--baselines", "kcf", "--starts", "100", "--out", "x"], "starts", 100),
    (["clip", "s", "o.mp4", "--fps", "1000"], "fps", 1000.0),
    (["track", "v.mp4", "--fps", "0.5", "--search-size", "4096"], "search_size", 4096),
    (["report", "--jobs", str(MAX_JOBS)], "jobs", MAX_JOBS),
    (["train", "--config", "c.json", "--seed", "0", "--steps", "10000000"], "steps", 10_000_000),
    (["compare", "--metrics", "m.json", "--keys", "sr50,,auc"], "keys", ("sr50", "auc")),
])
def test_the_bounds_themselves_are_accepted(parsed, args, name, value):
    assert main(args) == 0 and getattr(parsed[0], name) == value


SECTIONS = [(ModelConfig, MODEL_RANGES, "model option"), (SamplingConfig, SAMPLING_RANGES, "sampling option"),
            (TrainConfig, OPTION_RANGES, "training option")]


@pytest.mark.parametrize("cls, ranges, label", SECTIONS)
def test_every_number_of_an_option_section_has_a_finite_range(cls, ranges, label):
    numbers = {f.name for f in fields(cls) if f.type in ("int", "float")}
    assert set(ranges) == numbers
    for name, (low, high) in ranges.items():
        assert all(isinstance(v, (int, float)) and abs(v) < float("inf") for v in (low, high)), name
        for value in (low - 1, high + 1):
            with pytest.raises(ValueError, match=rf"{label} {name}={value!r} is not valid: must be in "
                                                 rf"\[{low}, {high}\]"):
                cls(**{name: value})


@pytest.mark.parametrize("raw, message", [
    ({"steps": 10**12}, r"training option steps=1000000000000 is not valid: must be in \[1, 10000000\]"),
    ({"batch_size": 100_000}, r"training option batch_size=100000 is not valid: must be in \[1, 256\]"),
    ({"num_workers": 100_000}, rf"num_workers=100000 is not valid: must be in \[0, {MAX_JOBS}\]"),
    ({"lr": float("inf")}, r"training option lr=inf is not valid: must be finite"),
    ({"model": {"crop_size": 100_000}}, r"model option crop_size=100000 is not valid: must be in \[1, 4096\]"),
])
def test_a_config_beyond_what_the_machine_holds_is_refused(raw, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**raw)


@pytest.fixture(scope="module")
def lite():
    torch.manual_seed(0)
    return stif_core.build_model("lite", "full", pretrained=False).eval()


def available(monkeypatch, gib: float):
    monkeypatch.setattr(search.psutil, "virtual_memory", lambda: SimpleNamespace(available=int(gib * GIB)))


def test_a_search_size_whose_step_does_not_fit_the_memory_is_refused(lite, monkeypatch):
    """1 GiB available, 80% of it usable: the lite model's 3 float32 maps of HW x HW cells fit up to a 91 x 91
    grid, a 753-pixel crop."""
    available(monkeypatch, 1)
    assert STIFTracker(lite, search_size=753).search.score_size == 91
    with pytest.raises(ValueError, match=r"search size 769 needs about 0\.84 GiB for a step's attention \(8649 "
                                         r"query cells x 8649 memory cells, torch\) and 0\.80 GiB can be used \(80% "
                                         r"of the 1\.00 GiB available\): the largest search size that fits is 753"):
        STIFTracker(lite, search_size=769)
    available(monkeypatch, 10**6)
    STIFTracker(lite, search_size=769)


def test_the_estimate_counts_the_engine_and_the_memory_frames(monkeypatch):
    full, baseline = make_config("lite", "full"), make_config("lite", "baseline")
    with pytest.raises(ValueError, match=r"x 8649 memory cells, onnx\).*the largest search size that fits is 609"):
        check_fits(full, SearchRegion.of(full, 769), 5, "onnx", GIB)
    with pytest.raises(ValueError, match=r"x 43245 memory cells, torch\).*the largest search size that fits is 513"):
        check_fits(baseline, SearchRegion.of(baseline, 769), 5, "torch", GIB)  # no TDE: every frame's cells
    with pytest.raises(ValueError, match="no search size fits"):
        check_fits(full, SearchRegion.of(full, 161), 5, "torch", 1000)


def test_a_search_size_beyond_the_absolute_bound_is_refused_whatever_the_memory(lite, monkeypatch):
    available(monkeypatch, 10**9)
    with pytest.raises(ValueError, match=r"search size 4097 is not valid: must be in \[1, 4096\] pixels"):
        STIFTracker(lite, search_size=4097)  # 161 + 246 * 16: on the grid
    with pytest.raises(ValueError, match=r"crop size 130 does not fit this model"):  # the grid's own message
        STIFTracker(lite, search_size=130)


@pytest.mark.data
def test_eval_refuses_a_search_size_the_memory_cannot_hold_in_one_line(monkeypatch, capsys, tmp_path):
    available(monkeypatch, 8)
    code = main(["eval", "--checkpoint", "stif_lite_full", "--sequences", "biker", "--search-size", "1761",
                 "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: search size 1761 needs about 24.78 GiB"), err
    assert "the largest search size that fits is" in err and not (tmp_path / "x").exists()


def test_the_memory_a_step_may_take_respects_the_process_limit(monkeypatch):
    """Under ``ulimit -v`` the memory free for a step is what the process may still map, not the machine's."""
    import resource

    from stif_core.tracking.search import available_bytes

    monkeypatch.setattr(resource, "getrlimit", lambda which: (3 * GIB, resource.RLIM_INFINITY))
    free = available_bytes(torch.device("cpu"))
    assert 0 <= free <= 3 * GIB
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    import psutil
    assert available_bytes(torch.device("cpu")) == pytest.approx(psutil.virtual_memory().available, rel=0.05)


def test_an_unknown_notebook_for_references_is_refused_before_any_folder_is_made(tmp_path, capsys):
    for option in ("--restore", "--notebooks"):
        assert main(["references", option, "99", "--out", str(tmp_path / "refs")]) == 2
        assert "no notebook matches ['99']" in capsys.readouterr().err and not (tmp_path / "refs").exists()


def test_a_training_config_out_holds_only_variant_and_seed(tmp_path):
    path = tmp_path / "config.json"
    for template in ("runs/{variant.__class__}", "runs/{seed[0]}", "runs/{other}"):
        path.write_text('{"out": "%s"}' % template)
        with pytest.raises(ValueError, match=r"may hold only \{variant\} and \{seed\}"):
            TrainConfig.load(path)


@pytest.mark.parametrize("args, message", [
    (["report", "--train-steps", "5"], "--train-steps sets the steps of --train's trainings"),
    (["bench", "--training", "configs/lite.json", "--json", "x.json"], "--json writes the speed report"),
    (["references", "--widen", "zen5", "--store"], "--store belong to the study; --widen and --restore run"),
    (["references", "--restore", "04", "--reuse", "--configs", "plain"], "--reuse, --configs belong to the study"),
    (["eval", "--checkpoint", "stif_lite_full", "--knockouts", ",", "--sequences", "dudek", "--out", "x"],
     "--knockouts ',' names no knock-out"),
])
def test_an_option_that_would_be_ignored_is_one_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.setenv("STIF_DATA_ROOT", str(default_data_root()))
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in capsys.readouterr().err and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. "
                                                               "DefaultCPUAllocator: can't allocate memory"),
                                   RuntimeError("could not create a primitive")])  # PyTorch's, oneDNN's words
def test_running_out_of_memory_is_one_line(monkeypatch, capsys, error):
    def exhausted(args):
        raise error

    for command in COMMANDS:
        monkeypatch.setattr(command, "run", exhausted)
    assert main(["compare", "--metrics", "m.json"]) == 2
    assert capsys.readouterr().err == "error: compare ran out of memory; nothing was written\n"


@pytest.mark.parametrize("error, said", [
    (MemoryError(), "too little memory to start (importing PyTorch and OpenCV)"),
    (ImportError("libopenblas.so: failed to map segment from shared object"),
     "too little memory to start (importing PyTorch and OpenCV)"),
    (ImportError("libGL.so.1: cannot open shared object file"),
     "a library cannot be loaded (libGL.so.1: cannot open shared object file); reinstall with pip install ."),
])
def test_a_library_that_cannot_be_loaded_at_start_is_one_line(monkeypatch, capsys, error, said):
    """Under a tight ``ulimit -v`` importing OpenCV fails in the loader (an ``ImportError``), before any command."""
    real = builtins.__import__

    def failing(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "commands" and level == 1:
            raise error
        return real(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", failing)
    assert main(["compare", "--metrics", "m.json"]) == 2
    assert capsys.readouterr().err == f"error: {said}; nothing was written\n"


def test_bench_training_reads_the_data_root_given(tmp_path, capsys):
    assert main(["bench", "--training", str(project_dir() / "configs" / "lite.json"), "--data-root",
                 str(tmp_path / "nowhere")]) == 2
    assert f"no sequences folder at {tmp_path / 'nowhere'}" in capsys.readouterr().err


def test_another_runtime_error_is_not_taken_for_memory(monkeypatch):
    def broken(args):
        raise RuntimeError("shape mismatch")

    for command in COMMANDS:
        monkeypatch.setattr(command, "run", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):  # a bug keeps its traceback
        main(["compare", "--metrics", "m.json"])


@pytest.mark.parametrize("args", [["book", "--out", "{root}/book"], ["book", "--out", "{tmp}/b", "--browser-check",
                                                                     "{root}/shots"],
                                  ["bench", "--json", "{root}/bench.json"]])
def test_book_and_bench_never_write_into_the_data_root(tmp_path, monkeypatch, capsys, args):
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("STIF_DATA_ROOT", str(root))
    assert main([a.format(root=root, tmp=tmp_path) for a in args]) == 2
    assert "lies inside the data root" in capsys.readouterr().err and list(root.iterdir()) == []
