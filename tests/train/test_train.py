"""Training: schedule, exact resumption after a kill, bad samples skipped, DDP on the CPU with gloo."""
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from stif_core.checkpoint import read_metadata
from stif_core.data.sampling import SamplingConfig, TrackingSamples
from stif_core.data.sequences import FrameError, Sequence
from stif_core.data.synthetic import synthetic_clip
from stif_core.train import TrainConfig, Trainer, lr_at, recipe, sampling_config
from stif_core.train import training_sequences as real_training_sequences  # the fixture replaces it


def tiny_config(out: Path, **kw) -> TrainConfig:
    base = dict(steps=4, batch_size=2, warmup_steps=2, freeze_backbone_steps=2, checkpoint_every=2,
                num_workers=0, threads=2, sequences=["synthetic"], out=str(out), device="cpu", lr=0.005, val_samples=0)
    return TrainConfig(**(base | kw))


@pytest.fixture(autouse=True)
def synthetic_data(monkeypatch):
    """Train on two small synthetic clips, so these tests need no data root."""
    clips = [synthetic_clip(30, size=(120, 160), seed=s, name=f"clip{s}") for s in (1, 2)]
    monkeypatch.setattr("stif_core.train.training_sequences", lambda cfg: clips)
    held_out = [synthetic_clip(30, size=(120, 160), seed=7, name="held-out")]
    monkeypatch.setattr("stif_core.train.validation_sequences", lambda cfg: held_out)


def test_schedule_warms_up_then_decays():
    cfg = TrainConfig(steps=100, warmup_steps=10, lr=0.1, min_lr=0.001)
    assert lr_at(0, cfg) == pytest.approx(0.001)
    assert lr_at(5, cfg) == pytest.approx(0.001 + 0.099 / 2)
    assert lr_at(10, cfg) == pytest.approx(0.1)
    assert lr_at(55, cfg) == pytest.approx(0.001 + 0.099 / 2)
    assert lr_at(100, cfg) == pytest.approx(0.001)


def test_unknown_config_option_is_named(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"stepz": 3}))
    with pytest.raises(ValueError, match="stepz"):
        TrainConfig.load(path)


def test_a_bad_option_is_blamed_on_whoever_gave_it(tmp_path):
    """An option out of range in the file names the file; one given beside a valid file names the options given."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"steps": 3}))
    with pytest.raises(ValueError, match=r"^the options given with .*c.json \(variant='bogus', seed=1\): unknown "
                                         r"variant 'bogus'"):
        TrainConfig.load(path, variant="bogus", seed=1, out=None)
    path.write_text(json.dumps({"variant": "bogus"}))
    with pytest.raises(ValueError, match=r"^.*c.json: unknown variant 'bogus'"):
        TrainConfig.load(path, seed=1)


def test_the_defaults_are_the_shipped_recipe_and_one_recipe_serves_every_row(tmp_path):
    from stif_core.checkpoint import read_metadata
    from stif_core.paths import checkpoint_path, project_dir
    from stif_core.train import GRAD_CLIP, MOMENTUM, TRUNK_LR_MULT, WEIGHT_DECAY

    configs = project_dir() / "configs"
    full = TrainConfig.load(configs / "lite.json")
    row = TrainConfig.load(configs / "lite.json", variant="ste+sde_q", seed=3)
    assert (full.variant, full.out) == ("full", "runs/lite_full")
    assert (row.variant, row.seed, row.out) == ("ste+sde_q", 3, "runs/lite_ste_sde_q")
    assert {k for k, v in asdict(row).items() if asdict(full)[k] != v} == {"variant", "seed", "out"}
    assert recipe(row) == recipe(full) == recipe(TrainConfig())  # seeds and rows of one recipe: the defaults
    shipped = json.loads(read_metadata(checkpoint_path("stif_lite_full"))["recipe"])
    constants = {"momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY, "backbone_lr_mult": TRUNK_LR_MULT,
                 "grad_clip": GRAD_CLIP, "lambda_reg": 1.0, "lambda_ctr": 1.0}  # retired options, now constants
    assert {k: shipped.pop(k) for k in constants} == constants and shipped == recipe(full)
    (tmp_path / "flipless.json").write_text(json.dumps({"extends": str(configs / "lite.json"),
                                                        "sampling": {"flip": 0.0}, "out": "runs/x"}))
    flipless = TrainConfig.load(tmp_path / "flipless.json")
    changed = {k for k, v in asdict(flipless).items() if asdict(full)[k] != v}
    assert changed == {"sampling", "out"} and flipless.sampling == {"mask_jitter": 0.3, "flip": 0.0}
    (tmp_path / "plain.json").write_text(json.dumps({"model": {"square_crops": False}}))
    plain = TrainConfig.load(tmp_path / "plain.json")  # a section merges into the defaults' too
    assert plain.model == {"square_crops": False} and plain.sampling == {"mask_jitter": 0.3}
    (tmp_path / "a.json").write_text(json.dumps({"extends": "b.json"}))
    (tmp_path / "b.json").write_text(json.dumps({"extends": "a.json"}))
    with pytest.raises(ValueError, match="'extends' loops back"):
        TrainConfig.load(tmp_path / "a.json")
    (tmp_path / "c.json").write_text(json.dumps({"out": "runs/{preset}"}))
    with pytest.raises(ValueError, match=r"may hold only \{variant\} and \{seed\}"):
        TrainConfig.load(tmp_path / "c.json")


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_killed_and_resumed_run_matches_the_uninterrupted_one(tmp_path, monkeypatch):
    straight = Trainer(tiny_config(tmp_path / "a"))
    straight.fit(progress=False)

    calls = {"n": 0}
    original = Trainer.train_step

    def dying_step(self, batch):
        if calls["n"] == 3:  # killed during the fourth step; the last checkpoint is at step 2
            raise KeyboardInterrupt
        calls["n"] += 1
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_config(tmp_path / "b")).fit(progress=False)
    assert len(read_log(tmp_path / "b")) == 3
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = Trainer(tiny_config(tmp_path / "b"))
    assert resumed.step == 2
    resumed.fit(progress=False)

    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    terms = ("step", "loss", "cls", "reg", "ctr", "iou")
    log_a = [{k: r[k] for k in terms} for r in read_log(tmp_path / "a")]
    log_b = [{k: r[k] for k in terms} for r in read_log(tmp_path / "b")]
    assert log_a == log_b and [r["step"] for r in log_a] == [0, 1, 2, 3]


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_validation_logs_the_gap_keeps_the_best_and_resumes(tmp_path, monkeypatch):
    Trainer(tiny_config(tmp_path / "a", val_samples=3)).fit(progress=False)
    rows = read_rows(tmp_path / "a" / "validation.jsonl")
    assert [r["step"] for r in rows] == [0, 2, 4]
    for r in rows:
        assert r["gap"] == pytest.approx(r["val_loss"] - r["train_loss"], abs=2e-6)
        assert r["val_loss"] != r["train_loss"]  # two different probes
    best = min(rows, key=lambda r: r["val_loss"])
    assert [r["best"] for r in rows] == [r["val_loss"] <= min(q["val_loss"] for q in rows[:i + 1])
                                         for i, r in enumerate(rows)]
    with safe_open(tmp_path / "a" / "best.safetensors", "pt") as f:
        meta = f.metadata()
    assert float(meta["val_loss"]) == best["val_loss"] and meta["selected_by"] == "val_loss"
    assert meta["seed"] == "0" and json.loads(meta["recipe"]) == recipe(tiny_config(tmp_path / "a", val_samples=3))

    original = Trainer.train_step
    calls = {"n": 0}

    def dying_step(self, batch):
        if calls["n"] == 3:
            raise KeyboardInterrupt
        calls["n"] += 1
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_config(tmp_path / "b", val_samples=3)).fit(progress=False)
    monkeypatch.setattr(Trainer, "train_step", original)
    Trainer(tiny_config(tmp_path / "b", val_samples=3)).fit(progress=False)
    assert read_rows(tmp_path / "b" / "validation.jsonl") == rows


def test_resume_refuses_a_different_config(tmp_path):
    Trainer(tiny_config(tmp_path, steps=2)).fit(progress=False)
    with pytest.raises(ValueError, match=r"another training config \(lr=[0-9.e-]+ \(now 0.5\)\); resume with"):
        Trainer(tiny_config(tmp_path, steps=2, lr=0.5))


def test_frozen_trunks_get_no_gradient_then_train(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, steps=3, freeze_backbone_steps=2, checkpoint_every=10))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.fit(progress=False)
    after = dict(trainer.model.named_parameters())
    trunk = [n for n in before if ".trunk." in f".{n}" and "bn" not in n.split(".")[-2]]
    assert all(p.requires_grad for p in after.values())
    moved = [n for n in trunk if not torch.equal(before[n], after[n].detach())]
    assert moved, "the trunks never trained after the freeze"
    assert not torch.equal(before["head.cls_pred.weight"], after["head.cls_pred.weight"].detach())


def test_bad_samples_are_skipped_and_counted(tmp_path):
    """A sequence without enough valid boxes is left out; a frame that cannot be read costs its sample an attempt,
    which is drawn again and counted."""
    clip = synthetic_clip(20, size=(96, 128), seed=3)
    bad = synthetic_clip(20, size=(96, 128), seed=4, name="bad")
    bad.boxes[5:] = np.nan  # annotations broken from frame 5 on
    bad.boxes[2:5, 2] = -4.0  # and negative widths before

    def loader(path):
        if path.stem == "7":
            raise FrameError(f"frame {path} is corrupt")
        return clip.frames[int(path.stem)]

    flaky = Sequence("flaky", [tmp_path / f"{i}.jpg" for i in range(20)], clip.boxes, clip.absent, loader=loader)
    ds = TrackingSamples([flaky, bad], SamplingConfig(), length=40, seed=0)
    assert [s.name for s in ds.sequences] == ["flaky"]
    items = [ds[k] for k in range(40)]
    skipped = [int(i["skipped"]) for i in items]
    assert sum(skipped) > 0 and all(torch.isfinite(i["query_box"]).all() for i in items)
    assert skipped == [int(ds[k]["skipped"]) for k in range(40)]  # deterministic per index


@pytest.mark.slow
@pytest.mark.subprocess
def test_ddp_with_two_cpu_processes(tmp_path):
    cfg = tiny_config(tmp_path / "ddp", steps=2, checkpoint_every=1, threads=1)
    path = tmp_path / "ddp.json"
    path.write_text(json.dumps(asdict(cfg) | {"sequences": None, "synthetic": True}))
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29517", "-m", "stif_core", "train", "--config", str(path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "ddp" / "model.safetensors").exists()
    log = read_log(tmp_path / "ddp")
    assert [r["step"] for r in log] == [0, 1] and all(np.isfinite(r["loss"]) for r in log)


@pytest.mark.slow
def test_frozen_trunk_in_onnx_runtime_trains_as_pytorch_does(tmp_path):
    pytest.importorskip("onnxruntime")
    runs = {}
    for engine in ("torch", "onnx"):
        cfg = tiny_config(tmp_path / engine, steps=3, freeze_backbone_steps=2, trunk_engine=engine, val_samples=2)
        trainer = Trainer(cfg)
        trainer.fit(progress=False)
        runs[engine] = (read_log(tmp_path / engine), read_rows(tmp_path / engine / "validation.jsonl"))
        assert trainer.frozen_trunk is None  # the trunk trained in PyTorch from step 2 on
    (log_t, val_t), (log_o, val_o) = runs["torch"], runs["onnx"]
    for a, b in zip(log_t, log_o):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)
    assert [r["val_loss"] for r in val_o] == pytest.approx([r["val_loss"] for r in val_t], rel=1e-3)
    with pytest.raises(ValueError, match="trunk_engine='tpu' is not valid"):
        tiny_config(tmp_path, trunk_engine="tpu")


def test_the_samples_take_the_models_crop_and_a_config_cannot_set_it(tmp_path):
    """crop_size, references and square_crops are derived from the model: a sampling section that sets one is
    refused in one line naming the model's option (it once passed and ended in a TypeError inside fit)."""
    for square in (True, False):
        cfg = tiny_config(tmp_path / str(square), model={"square_crops": square})
        model = Trainer(cfg).model
        samples = TrackingSamples([synthetic_clip(30, size=(120, 160), seed=1)], sampling_config(cfg), 2,
                                  model=model.cfg)
        assert (samples.crop_size, samples.references, samples.square_crops) == (161, 3, square)
        assert samples.options == {"crop_size": 161, "references": 3, "square_crops": square} | asdict(
            sampling_config(cfg))
    for name, owner in (("crop_size", "crop_size"), ("references", "memory_size"), ("square_crops", "square_crops")):
        with pytest.raises(ValueError, match=rf"^sampling option {name} is derived from the model \(model option "
                                             rf"{owner}\): set that in the model section, not in sampling$"):
            tiny_config(tmp_path / "no", sampling={name: 161})


def test_a_run_that_never_reached_a_checkpoint_leaves_nothing_to_the_next(tmp_path):
    """A run stopped before its first checkpoint left its step-0 validation row and best.safetensors; a new run in
    that folder (another config) starts clean: none of the earlier run's rows, and its own best weights."""
    first = Trainer(tiny_config(tmp_path / "run", val_samples=4, checkpoint_every=100, lr=0.02))
    with pytest.raises(KeyboardInterrupt):
        first.fit(progress=False, on_step=lambda row: (_ for _ in ()).throw(KeyboardInterrupt))
    assert (tmp_path / "run" / "best.safetensors").exists() and not (tmp_path / "run" / "checkpoint.pt").exists()
    old = load_file(tmp_path / "run" / "best.safetensors")
    (tmp_path / "run" / "model.safetensors").write_text("mine")  # a file of the user's under a name the run uses
    with pytest.raises(ValueError, match="was not written by this tool"):
        Trainer(tiny_config(tmp_path / "run", val_samples=4, checkpoint_every=100, steps=2)).fit(progress=False)
    assert (tmp_path / "run" / "model.safetensors").read_text() == "mine"
    (tmp_path / "run" / "model.safetensors").unlink()
    second = Trainer(tiny_config(tmp_path / "run", val_samples=4, checkpoint_every=100, steps=2, lr=0.001))
    second.fit(progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "validation.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 2] and rows[0]["best"]
    new = load_file(tmp_path / "run" / "best.safetensors")
    assert any(not torch.equal(old[k], new[k]) for k in old)
    assert read_metadata(tmp_path / "run" / "best.safetensors")["recipe"] == json.dumps(recipe(second.cfg),
                                                                                         sort_keys=True)
    assert second.selected == tmp_path / "run" / "best.safetensors"
    (tmp_path / "run" / "best.safetensors").unlink()  # the same command again, on a finished run: no step left
    again = Trainer(tiny_config(tmp_path / "run", val_samples=4, checkpoint_every=100, steps=2, lr=0.001))
    with pytest.warns(UserWarning, match="best.safetensors is missing: the weights at the lowest val loss are lost"):
        again.fit(progress=False)
    assert again.selected == tmp_path / "run" / "model.safetensors"


def test_a_refused_run_leaves_no_folder_behind(tmp_path, monkeypatch):
    """A run refused before it writes (here its data cannot be read) leaves no empty folder where it would have
    written; a folder that was there stays."""
    def unreadable(cfg):
        raise ValueError("no frames")

    monkeypatch.setattr("stif_core.train.training_sequences", unreadable)
    (tmp_path / "there").mkdir()
    for name in ("new", "there"):
        trainer = Trainer(tiny_config(tmp_path / name))
        with pytest.raises(ValueError, match="no frames"):
            trainer.fit(progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there"]


def test_best_weights_another_run_wrote_are_never_selected(tmp_path):
    """``best.safetensors`` copied from a run of another recipe, or another seed, into a finished run's folder:
    the run refuses it instead of handing it to ``sweep`` or ``crossval`` as its own selection."""
    for name, lr, seed in (("mine", 0.001, 0), ("lr", 0.02, 0), ("seed", 0.001, 1)):
        Trainer(tiny_config(tmp_path / name, val_samples=4, steps=2, lr=lr, seed=seed)).fit(progress=False)
    for other, differ in (("lr", "recipe"), ("seed", "seed")):
        shutil.copy(tmp_path / other / "best.safetensors", tmp_path / "mine" / "best.safetensors")
        with pytest.raises(ValueError, match=rf"mine/best.safetensors was not written by this run \(its {differ} "
                                             r"differ\); it is never selected"):
            Trainer(tiny_config(tmp_path / "mine", val_samples=4, steps=2, lr=0.001)).fit(progress=False)


def test_a_resume_on_changed_data_is_refused_naming_what_changed(tmp_path, monkeypatch):
    """The same options and data root, but ground truth edited between a stopped run and its resume: the run would
    have mixed two data sets; the checkpoint records each sequence's fingerprint."""
    Trainer(tiny_config(tmp_path)).fit(progress=False, stop_at=2)  # stopped at its step-2 checkpoint
    clips = [synthetic_clip(30, size=(120, 160), seed=s, name=f"clip{s}") for s in (1, 2)]
    clips[1].boxes[5, 0] += 3  # one box of clip2 edited
    monkeypatch.setattr("stif_core.train.training_sequences", lambda cfg: clips)
    with pytest.raises(ValueError, match=r"was trained on other data than the data root holds now \(frames or ground "
                                         r"truth changed: clip2\); resume on the data it was trained on"):
        Trainer(tiny_config(tmp_path)).fit(progress=False)


def test_a_resume_on_changed_validation_data_is_refused(tmp_path, monkeypatch):
    """The best checkpoint would be chosen across two val sets: the validation sequences are fingerprinted too."""
    Trainer(tiny_config(tmp_path, val_samples=2)).fit(progress=False, stop_at=2)
    held_out = [synthetic_clip(30, size=(120, 160), seed=7, name="held-out")]  # the fixture's, one box edited
    held_out[0].boxes[7, 1] += 2
    monkeypatch.setattr("stif_core.train.validation_sequences", lambda cfg: held_out)
    with pytest.raises(ValueError, match=r"frames or ground truth changed: val held-out"):
        Trainer(tiny_config(tmp_path, val_samples=2)).fit(progress=False)


def write_data(root: Path, names: list[str], splits: dict) -> Path:
    """A data root of 3-frame synthetic sequences (OTB layout) with ``splits.json`` beside it."""
    from PIL import Image

    for name in names:
        clip = synthetic_clip(3, size=(60, 80), seed=1)
        (root / "seqs" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(clip.frame(i)).save(root / "seqs" / name / f"{i + 1:04d}.png")
        (root / "seqs" / name / "groundtruth.txt").write_text("".join(",".join(map(str, b)) + "\n" for b in clip.boxes))
    (root / "splits.json").write_text(json.dumps(splits))
    return root / "seqs"


def test_training_on_validation_sequences_or_a_sequence_twice_is_refused(tmp_path):
    """``sequences`` holding a val sequence, or ``split`` = ``val_split``, trained and validated on the same data
    silently; a sequence given twice was sampled twice as often."""
    root = str(write_data(tmp_path, ["a", "b", "c"], {"train": ["a", "b"], "val": ["c"]}))
    assert [s.name for s in real_training_sequences(TrainConfig(data_root=root))] == ["a", "b"]
    cases = [(dict(sequences=["a", "c"]), r"the training sequences and val_split 'val' share 1 sequence\(s\), e.g. "
                                          r"\['c'\]"),
             (dict(split="val"), r"the training split 'val' and val_split 'val' share 1 sequence"),
             (dict(sequences=["a", "b", "a"]), r"training option sequences names \['a'\] more than once")]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            real_training_sequences(TrainConfig(data_root=root, **options))
    assert len(real_training_sequences(TrainConfig(data_root=root, sequences=["a", "c"], val_split=None))) == 2


@pytest.mark.parametrize("out", ["/tmp/x/o_{seed:>4000000000}", "o_{variant!r}", "o_{seed:d}"])
def test_a_config_out_holds_plain_variant_and_seed_only(tmp_path, out):
    """A format width in ``out`` had allocated gigabytes; a conversion or spec is refused before formatting."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"out": out}))
    with pytest.raises(ValueError, match=r"may hold only \{variant\} and \{seed\}"):
        TrainConfig.load(path)


def test_weights_get_the_mode_of_the_other_outputs_and_a_dead_loader_process_is_one_message(tmp_path, monkeypatch):
    """safetensors writes its files private (0600); the run's weights get the umask's mode, as its logs do. A data
    loader process that dies (killed, out of memory) ends the run with the line that says how to resume."""
    trainer = Trainer(tiny_config(tmp_path / "run", steps=2))
    final = trainer.fit(progress=False)
    umask = os.umask(0o022)
    os.umask(umask)
    assert final.stat().st_mode & 0o777 == 0o666 & ~umask == (tmp_path / "run" / "log.jsonl").stat().st_mode & 0o777
    died = RuntimeError("DataLoader worker (pid(s) 4242) exited unexpectedly")
    monkeypatch.setattr(Trainer, "run_steps", lambda *a: (_ for _ in ()).throw(died))
    with pytest.raises(OSError, match=r"a data loader process stopped \(DataLoader worker \(pid\(s\) "
                                      r"4242\).*the same command resumes from it"):
        Trainer(tiny_config(tmp_path / "run", steps=2)).fit(progress=False)
