"""No silent wrong results: results keyed by what produced them, frames decoded or refused, training data asked
for explicitly and recorded, off-image boxes, a torn training log, and one clear line for bad input."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli
from PIL import Image

import stif_core
from stif_core.checkpoint import load_model, read_metadata, save_weights
from stif_core.data.sequences import AnnotationError, FrameError, Sequence, load_split, read_image, read_otb_sequence
from stif_core.data.synthetic import synthetic_clip
from stif_core.evaluation.harness import evaluate, hidden_frames, track_sequence
from stif_core.evaluation.metrics import evaluate_sequence
from stif_core.evaluation.trackers import stif_trackers
from stif_core.paths import checkpoint_path, default_data_root
from stif_core.tracking.baselines import make_baseline
from stif_core.tracking.tracker import DEFAULT_MEMORY_POLICY, STIFTracker
from stif_core.train import TrainConfig, Trainer, training_sequences


def kcf():
    return make_baseline("kcf")


def never():
    raise AssertionError("tracked again although complete results of the same tracker exist")


# ------------------------------------------------------------------ 1. eval's results keyed by what produced them


def test_results_of_another_set_up_are_refused_and_metrics_keep_earlier_rows(tmp_path):
    clip = synthetic_clip(12, size=(96, 128), seed=1)
    first = evaluate({"kcf": kcf}, [clip], tmp_path, progress=False, signatures={"kcf": {"tracker": "kcf", "v": 1}})
    again = evaluate({"kcf": never}, [clip], tmp_path, progress=False, signatures={"kcf": {"tracker": "kcf", "v": 1}})
    assert again["kcf"]["overall"]["auc"] == first["kcf"]["overall"]["auc"]  # read back, not tracked
    with pytest.raises(ValueError, match=r"holds results of another tracker set-up \(stored \{'v': 1\}, this run "
                                         r"\{'v': 2\}\)"):
        evaluate({"kcf": never}, [clip], tmp_path, progress=False, signatures={"kcf": {"tracker": "kcf", "v": 2}})
    evaluate({"csrt": lambda: make_baseline("csrt")}, [clip], tmp_path, progress=False)
    assert set(json.loads((tmp_path / "metrics.json").read_text())) == {"kcf", "csrt"}
    shutil.rmtree(tmp_path / "csrt" / "got10k")
    (tmp_path / "csrt" / "run.json").unlink()  # results whose origin is unknown
    with pytest.raises(ValueError, match="without a record of what produced them"):
        evaluate({"csrt": never}, [clip], tmp_path, progress=False)


def test_two_checkpoints_of_one_variant_get_two_rows(tmp_path):
    model = load_model("stif_lite_full")
    other = tmp_path / "other.safetensors"
    save_weights(model, other, read_metadata(checkpoint_path("stif_lite_full")) | {"steps": "1"})
    factories, signatures = stif_trackers(["stif_lite_full", str(other)], "got10k", DEFAULT_MEMORY_POLICY, "cpu")
    names = sorted(factories)
    assert len(names) == 2 and all(n.startswith("stif-full-") and n.endswith("-got10k") for n in names)
    assert len({signatures[n]["checkpoint_sha256"] for n in names}) == 2
    assert {signatures[n]["params"] for n in names} == {"got10k"}


def test_eval_rows_name_a_memory_policy_that_is_not_the_default():
    """The tracker's default policy (STMTrack's) names no suffix; the paper's "recent" does, and each row's
    signature records the policy it tracked with."""
    assert DEFAULT_MEMORY_POLICY == "stmtrack"
    factories, signatures = stif_trackers(["stif_lite_full"], "otb", DEFAULT_MEMORY_POLICY, "cpu")
    assert list(factories) == ["stif-full"] and factories["stif-full"]().policy == "stmtrack"
    factories, signatures = stif_trackers(["stif_lite_full"], "otb", "recent", "cpu")
    assert list(factories) == ["stif-full-recent"] and signatures["stif-full-recent"]["memory_policy"] == "recent"
    assert factories["stif-full-recent"]().policy == "recent"


# ------------------------------------------------------------------ 2. frames


def test_16_bit_grayscale_png_is_scaled_not_white(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "00000001.png")
    image = read_image(tmp_path / "00000001.png")
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    np.testing.assert_allclose(image[..., 0], np.rint(ramp / 257.0), atol=1)
    assert image.min() == 0 and image.max() == 255 and 100 < image.mean() < 155


def test_float_frames_are_refused_by_the_trackers():
    clip = synthetic_clip(3, size=(96, 128), seed=1)
    for tracker in (STIFTracker(load_model("stif_lite_full")), make_baseline("csrt")):
        with pytest.raises(ValueError, match="must be uint8 RGB.*got float32"):
            tracker.init(clip.frame(0).astype(np.float32) / 255, clip.boxes[0])
        tracker.init(clip.frame(0), clip.boxes[0])
        with pytest.raises(ValueError, match="must be uint8 RGB.*got float64"):
            tracker.update(clip.frame(1) / 255.0)


def test_an_opencv_peer_that_fails_is_reported_and_the_run_goes_on(capsys):
    frames = np.random.default_rng(0).integers(0, 255, (5, 120, 160, 3), dtype=np.uint8)
    seq = Sequence("tiny-box", frames, np.tile([50.0, 50.0, 1.0, 1.0], (5, 1)))
    boxes, times = track_sequence(make_baseline("csrt"), seq, progress=False)
    assert "tiny-box, frame 0: csrt could not start" in capsys.readouterr().out
    np.testing.assert_array_equal(boxes, np.tile([50.0, 50.0, 1.0, 1.0], (5, 1)))


# ------------------------------------------------------------------ 3. training data and config


def test_training_data_must_exist_unless_synthetic_is_asked_for(tmp_path):
    for root in (tmp_path / "missing", tmp_path):  # mistyped, and empty
        with pytest.raises(FileNotFoundError):
            training_sequences(TrainConfig(data_root=str(root)))
    assert [s.name for s in training_sequences(TrainConfig(synthetic=True))][:1] == ["synthetic-0"]


def test_the_model_records_its_training_data(tmp_path):
    cfg = TrainConfig(synthetic=True, steps=1, batch_size=1, warmup_steps=0, freeze_backbone_steps=1,
                      num_workers=0, checkpoint_every=1, device="cpu", out=str(tmp_path / "run"), val_samples=0)
    data = json.loads(read_metadata(Trainer(cfg).fit(progress=False))["data"])
    assert data["source"] == "synthetic" and data["sequences"][0] == "synthetic-0" and len(data["sha256"]) == 64


@pytest.mark.subprocess
@pytest.mark.parametrize("raw, message", [
    ({"steps": -5}, r"steps=-5 is not valid: must be in \[1, 10000000\]"),
    ({"steps": "ten"}, r"steps='ten' is not valid: expected int"),
    ({"batch_sise": 4}, r"unknown training option\(s\) \['batch_sise'\]"),
    ({"lr": 20}, r"lr=20 is not valid: must be in \[0, 10\]"),
])
def test_bad_training_options_are_named(tmp_path, raw, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=message):
        TrainConfig.load(path)
    run = cli("train", "--config", str(path))
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


def test_torn_last_log_line_is_dropped_on_resume(tmp_path):
    cfg = TrainConfig(synthetic=True, steps=3, batch_size=1, warmup_steps=0, freeze_backbone_steps=3,
                      num_workers=0, checkpoint_every=1, device="cpu", out=str(tmp_path / "run"), val_samples=0)
    Trainer(cfg).fit(progress=False, stop_at=2)
    log = tmp_path / "run" / "log.jsonl"
    log.write_text(log.read_text() + '{"step": 2, "lo')  # a kill in the middle of a write
    Trainer(cfg).fit(progress=False)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [0, 1, 2]


# ------------------------------------------------------------------ 4. boxes off the image


def write_sequence(folder, boxes, size=(64, 48)):
    folder.mkdir(parents=True)
    for i in range(len(boxes)):
        Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(folder / f"{i + 1:08d}.jpg")
    (folder / "groundtruth.txt").write_text("".join(f"{','.join(map(str, b))}\n" for b in boxes))
    return folder


def test_a_box_off_the_image_marks_its_frame_absent(tmp_path):
    seq = read_otb_sequence(write_sequence(tmp_path / "a", [[5, 5, 10, 10], [70, 5, 10, 10], [-20, 5, 10, 10],
                                                            [60, 40, 10, 10]]))
    assert seq.absent.tolist() == [False, True, True, False]  # the last box still overlaps the frame
    assert np.isnan(seq.boxes[1:3]).all()
    scored = evaluate_sequence(np.nan_to_num(seq.boxes), seq.boxes, (64, 48), hidden_frames(seq))
    assert len(scored["ious"]) == 1  # GOT-10k's rule scores frames after the first: only frame 3 counts here
    with pytest.raises(AnnotationError, match=r"line 1: box .* lies outside the frame"):
        read_otb_sequence(write_sequence(tmp_path / "b", [[70, 5, 10, 10], [5, 5, 10, 10]]))


# ------------------------------------------------------------------ clearer errors


def test_a_checkpoint_that_is_not_safetensors_is_named(tmp_path):
    pickle = tmp_path / "model.safetensors"
    torch.save({"w": torch.zeros(2)}, pickle)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(checkpoint_path("stif_lite_full").read_bytes()[:1000])
    for path in (pickle, truncated):
        with pytest.raises(ValueError, match=rf"checkpoint {path} is not a readable safetensors file"):
            load_model(path)


def test_missing_first_frame_is_named(tmp_path):
    folder = write_sequence(tmp_path / "s", [[5, 5, 10, 10]] * 3)
    (folder / "00000001.jpg").unlink()
    with pytest.raises(AnnotationError, match=r"3 boxes for 2 frames, 00000002.jpg to 00000003.jpg: frames before"):
        read_otb_sequence(folder)


@pytest.mark.parametrize("text, message", [("{", "is not valid JSON"),
                                           ('{"val": "ok"}', r"split 'val' must be a list of sequence names")])
def test_malformed_splits_file_is_named(tmp_path, text, message):
    (tmp_path / "sequences").mkdir()
    (tmp_path / "splits.json").write_text(text)
    with pytest.raises(ValueError, match=message):
        load_split("val", tmp_path / "sequences")


@pytest.mark.subprocess
@pytest.mark.data
@pytest.mark.parametrize("args, message", [
    (["eval", "--split", "val", "--sequences", "deer", "--baselines", "kcf", "--out", "x"], "not both"),
    (["eval", "--sequences", "deer", "--baselines", "kcf", "--params", "got10k", "--out", "x"], "need a --checkpoint"),
    (["eval", "--sequences", "deer", "--checkpoint", "nothing", "--out", "x"], "no shipped model of that name"),
    (["eval", "--sequences", "deer", "--checkpoint", "stif_lite_baseline", "--knockouts", "gate_half", "--out", "x"],
     "unknown knock-out 'gate_half' for the baseline variant"),
    (["report", "--variants", "bogus"], "unknown variant 'bogus'"),
    (["sweep", "--config", "missing.json", "--variants", "full", "--seeds", "1", "--out", "x"], "missing.json"),
    (["sweep", "--variants", "full", "--seeds", "1", "--sequences", "nowhere", "--steps", "1", "--out", "x",
      "--no-ray"], "nowhere"),
])
def test_command_line_errors_are_one_line(tmp_path, args, message):
    run = cli(*args, cwd=tmp_path)
    assert run.returncode == 2 and message in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.subprocess
def test_a_reader_that_closes_the_output_early_is_no_error():
    """``demo | head``: the pipe closed under the command (here before it writes: ``| true``) is the shell's status
    141 and a line saying what was kept, not ``error: Broken pipe``."""
    env = os.environ | {"PYTHONPATH": str(Path(stif_core.__file__).parent.parent)}
    run = subprocess.run(f"{sys.executable} -m stif_core demo | true; echo status ${{PIPESTATUS[0]}}",
                         shell=True, executable="/bin/bash", capture_output=True, text=True, env=env, timeout=300)
    assert run.stdout == "status 141\n"
    assert run.stderr == "demo stopped: the program reading its output closed it; nothing was written\n"


@pytest.mark.subprocess
def test_negative_bench_frames_are_refused():
    run = cli("bench", "--frames", "-5")
    assert run.returncode == 2 and "argument --frames: -5 is not an integer in [1, 10000000]" in run.stderr


# ------------------------------------------------------------------ 5. no result for data it was not computed on


def renamed(clip, name):
    return Sequence(name, clip.frames, clip.boxes, clip.absent)


def test_a_stored_result_of_other_data_under_the_same_name_is_tracked_again(tmp_path, capsys):
    a, b = (renamed(synthetic_clip(12, size=(96, 128), seed=s), "clip") for s in (1, 2))
    assert a.fingerprint() != b.fingerprint() and a.fingerprint() == renamed(a, "clip").fingerprint()
    evaluate({"kcf": kcf}, [a], tmp_path, progress=False)
    fresh = evaluate({"kcf": kcf}, [b], tmp_path / "fresh", progress=False)
    again = evaluate({"kcf": kcf}, [b], tmp_path, progress=False)  # same name, same length, other frames
    assert "computed on other data (its frames or ground truth differ" in capsys.readouterr().out
    assert again["kcf"]["overall"]["auc"] == fresh["kcf"]["overall"]["auc"]
    assert again["kcf"]["per_sequence"]["clip"]["data"] == b.fingerprint()
    moved = replace(b, boxes=b.boxes + 1.0)  # the ground truth changed since: other data too
    evaluate({"kcf": kcf}, [moved], tmp_path, progress=False)
    assert "computed on other data" in capsys.readouterr().out
    evaluate({"kcf": never}, [moved], tmp_path, progress=False)  # the same data again: read back


def test_a_stored_result_edited_since_it_was_written_is_tracked_again(tmp_path, capsys):
    """Result files rewritten with as many lines (another tool, a stray edit) are not scored as this run's."""
    clip = renamed(synthetic_clip(12, size=(96, 128), seed=1), "clip")
    first = evaluate({"kcf": kcf}, [clip], tmp_path, progress=False)
    result = tmp_path / "kcf" / "otb" / "clip.txt"
    result.write_text("".join("1.0,1.0,5.0,5.0\n" for _ in range(len(clip))))  # same length, other boxes
    again = evaluate({"kcf": kcf}, [clip], tmp_path, progress=False)
    assert "the stored result's files changed since they were written" in capsys.readouterr().out
    assert again["kcf"]["overall"]["auc"] == first["kcf"]["overall"]["auc"]
    evaluate({"kcf": never}, [clip], tmp_path, progress=False)  # the new result, unchanged: read back


def test_a_result_copied_from_another_trackers_folder_is_tracked_again(tmp_path, capsys):
    """Another set-up's complete result (its boxes, times and record) copied into this tracker's folder is not
    reported as this tracker's: each record names the set-up (``run.json``) that produced it."""
    clip = renamed(synthetic_clip(12, size=(96, 128), seed=1), "clip")
    csrt = evaluate({"csrt": lambda: make_baseline("csrt")}, [clip], tmp_path, progress=False)
    first = evaluate({"kcf": kcf}, [clip], tmp_path, progress=False)
    assert first["kcf"]["overall"]["auc"] != csrt["csrt"]["overall"]["auc"]
    for sub in ("otb", "got10k", "data"):
        shutil.rmtree(tmp_path / "kcf" / sub)
        shutil.copytree(tmp_path / "csrt" / sub, tmp_path / "kcf" / sub)
    again = evaluate({"kcf": kcf}, [clip], tmp_path, progress=False)
    assert "kcf/clip: the stored result was produced by another tracker set-up" in capsys.readouterr().out
    assert again["kcf"]["overall"]["auc"] == first["kcf"]["overall"]["auc"]
    evaluate({"kcf": never}, [clip], tmp_path, progress=False)  # its own result now: read back


def test_compare_pairs_only_scores_of_the_same_data_and_says_what_it_dropped(tmp_path):
    from stif_core.evaluation.compare import comparison, format_comparison

    same = renamed(synthetic_clip(12, size=(96, 128), seed=3), "same")
    a, b = (renamed(synthetic_clip(12, size=(96, 128), seed=s), "clip") for s in (1, 2))
    evaluate({"kcf": kcf}, [same, a], tmp_path, progress=False)
    evaluate({"csrt": lambda: make_baseline("csrt")}, [same, b], tmp_path, progress=False)
    rows = json.loads((tmp_path / "metrics.json").read_text())
    table = comparison(rows, "kcf", ("auc",))
    assert int(table.loc["csrt", "sequences"]) == 1 and not table.loc["csrt", "auc_resolved"]
    text = format_comparison(table, "kcf", ("auc",))
    assert "left out (1): clip: rows computed on different data" in text
    assert "one sequence in common: no interval can be computed" in text
    assert np.isnan(table.loc["csrt", "auc_low"])


@pytest.mark.subprocess
@pytest.mark.parametrize("rows, message", [({}, "holds no tracker's row"),
                                           ({"a": {"overall": {}, "per_sequence": {"x": {"ao": 0.5}}}},
                                            r"row 'a' has no \['auc'\] for sequence 'x'"),
                                           ([1, 2], "not an eval metrics file")])
def test_compare_on_a_metrics_file_without_scores_is_one_line(tmp_path, rows, message):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(rows))
    run = cli("compare", "--metrics", str(path), "--keys", "auc")
    assert run.returncode == 2 and re.search(message, run.stderr) and run.stderr.count("\n") == 1, run.stderr


def test_a_metrics_file_in_out_that_is_not_one_stops_eval_before_tracking(tmp_path):
    from stif_core.files import output_folder, write_text

    out = tmp_path / "out"
    with output_folder(out, "eval"):  # a tools' folder whose metrics.json was damaged since
        write_text(out / "metrics.json", "{}")
    (out / "metrics.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=f"metrics file {out / 'metrics.json'} is not an eval metrics file"):
        evaluate({"kcf": never}, [synthetic_clip(5, size=(96, 128), seed=1)], out, progress=False)
    (out / "metrics.json").write_text("{")
    with pytest.raises(ValueError, match="metrics.json is not valid JSON"):
        evaluate({"kcf": never}, [synthetic_clip(5, size=(96, 128), seed=1)], out, progress=False)


@pytest.mark.subprocess
def test_sequences_without_ground_truth_after_the_first_frame_are_not_scored(tmp_path):
    """A GOT-10k test split holds only the first box: scoring it gave every tracker AUC 0.95. It is refused
    for scoring before anything runs, and ``--results-only`` writes the files a server scores."""
    folder = write_sequence(tmp_path / "data" / "test" / "GOT-10k_Test_000001", [[5, 5, 10, 10]] * 4)
    (folder / "groundtruth.txt").write_text("5,5,10,10\n")
    args = ["eval", "--data-root", str(tmp_path / "data"), "--layout", "got10k", "--split", "test",
            "--baselines", "kcf", "--out", str(tmp_path / "out")]
    run = cli(*args)
    assert run.returncode == 2 and "no ground truth after their first frame" in run.stderr, run.stderr
    assert "--results-only" in run.stderr and not (tmp_path / "out").exists()
    run = cli(*args, "--results-only")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "kcf" / "got10k" / folder.name / f"{folder.name}_001.txt").is_file()
    assert not (tmp_path / "out" / "metrics.json").exists()
    one = Sequence("one", synthetic_clip(1, size=(96, 128), seed=1).frames, [[5, 5, 10, 10]])
    with pytest.raises(ValueError, match=r"no ground truth after their first frame.*\['one'\]"):
        evaluate({"kcf": never}, [one], tmp_path / "one", progress=False)


def test_names_that_would_become_paths_are_checked(tmp_path):
    clip = renamed(synthetic_clip(5, size=(96, 128), seed=1), "../escape")
    with pytest.raises(ValueError, match="sequence name '../escape' is not a valid name"):
        evaluate({"kcf": never}, [clip], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape").exists()


# ------------------------------------------------------------------ 6. frames of one size


def test_a_frame_of_another_size_is_named_by_the_reader_and_refused_by_the_trackers(tmp_path):
    folder = write_sequence(tmp_path / "s", [[5, 5, 10, 10]] * 3)
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(folder / "00000002.jpg")  # 64 x 32, the others 64 x 48
    seq = read_otb_sequence(folder)
    assert seq.frame(0).shape == (48, 64, 3)
    with pytest.raises(FrameError, match=r"frame index 1 .*00000002.jpg\): 64x32 pixels, but the first frame is "
                                         r"64x48"):
        seq.frame(1)
    clip = synthetic_clip(3, size=(96, 128), seed=1)
    for tracker in (STIFTracker(load_model("stif_lite_full")), make_baseline("kcf")):
        with pytest.raises(RuntimeError, match=r"update\(\) before init\(\)"):
            tracker.update(clip.frame(1))
        tracker.init(clip.frame(0), clip.boxes[0])
        with pytest.raises(ValueError, match="a frame of 128x64 pixels, but the tracker was started on a 128x96"):
            tracker.update(clip.frame(1)[:64])
        tracker.update(clip.frame(1))


# ------------------------------------------------------------------ 7. options checked, verdicts from enough evidence


@pytest.mark.subprocess
@pytest.mark.parametrize("raw, message", [
    ({"sampling": {"negative_ratio": 5}}, r"sampling option negative_ratio=5 is not valid: must be in \[0, 1\]"),
    ({"sampling": {"mask_jitter": "0.3"}}, r"sampling option mask_jitter='0.3' is not valid: expected float"),
    ({"sampling": {"mask_jiter": 0.3}}, r"unknown sampling option\(s\) \['mask_jiter'\]"),
    ({"sampling": {"crop_size": 161}}, r"sampling option crop_size is derived from the model \(model option "
                                       r"crop_size\): set that in the model section"),
    ({"sampling": {"references": 3}}, r"sampling option references is derived from the model \(model option "
                                      r"memory_size\)"),
    ({"model": {"shared_neck": True}}, r"unknown model option\(s\) \[.shared_neck.\]"),
    ({"model": {"channels": "128"}}, r"model option channels='128' is not valid: expected int"),
    ({"model": {"memory_size": 0}}, r"model option memory_size=0 is not valid: must be in \[1, 32\]"),
    ({"sequences": []}, r"sequences=\[\] names no sequence"),
    ({"variant": "baseline", "model": {"ste": True}}, r"config.json: model option\(s\) \['ste'\] are the variant's "
                                                      r"switches: choose the variant instead"),
])
def test_every_section_of_a_training_config_is_checked_by_name(tmp_path, raw, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw | {"out": str(tmp_path / "run")}))
    with pytest.raises(ValueError, match=message):
        training_sequences(TrainConfig.load(path))
    run = cli("train", "--config", str(path))
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr


def test_a_checkpoint_is_never_loaded_as_another_preset():
    with pytest.raises(ValueError, match="holds a lite-preset model; it cannot be loaded as preset 'paper'"):
        load_model("stif_lite_full", preset="paper")
    assert load_model("stif_lite_full", preset="lite").cfg.backbone == "efficientnet_lite0"


def test_health_gives_no_verdict_from_too_few_samples_and_names_the_checks_that_do_not_apply():
    from stif_core.lab.health import CHECKS, Bounds, format_report, report

    clip = synthetic_clip(30, size=(120, 160), seed=1)
    summary = report(load_model("stif_lite_baseline"), [clip], per_sequence=3, bounds=Bounds())
    assert set(summary["checks"]) == set(CHECKS) and summary["too_few_samples"]
    text = format_report(summary)
    assert "UNHEALTHY" not in text and "too few samples (3 < 20)" in text and "no verdict from 3 samples" in text
    assert summary["checks"]["largest temporal weight, mean"]["why"] == "not applicable: the baseline model has " \
                                                                         "no TDE (ste)"


# ------------------------------------------------------------------ 8. interrupted runs


@pytest.mark.subprocess
@pytest.mark.data
def test_an_interrupted_eval_says_how_to_resume(tmp_path):
    root = default_data_root()
    env = os.environ | {"STIF_DATA_ROOT": str(root), "PYTHONPATH": str(Path(stif_core.__file__).parent.parent)}
    process = subprocess.Popen([sys.executable, "-m", "stif_core", "eval", "--sequences", "jogging-1", "jogging-2",
                                "--baselines", "csrt", "--out", str(tmp_path / "out")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a background
    # job of a shell without job control starts with SIGINT ignored; Ctrl-C reaches a foreground command
    deadline = time.monotonic() + 120
    while not (tmp_path / "out" / "csrt" / "data" / "jogging-1.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted: eval stopped; the sequences finished before the stop, if any, are kept in --out" in err
    assert "Traceback" not in err


@pytest.mark.subprocess
@pytest.mark.data
def test_a_command_started_ignoring_sigint_keeps_ignoring_it(tmp_path):
    """A background job of a script (or nohup) starts with SIGINT ignored: the command does not take the signal
    back, at any moment of its run."""
    env = os.environ | {"STIF_DATA_ROOT": str(default_data_root()),
                        "PYTHONPATH": str(Path(stif_core.__file__).parent.parent)}
    process = subprocess.Popen([sys.executable, "-m", "stif_core", "eval", "--sequences", "jogging-1", "jogging-2",
                                "--baselines", "kcf", "--out", str(tmp_path / "out")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 120
    while not (tmp_path / "out" / "kcf" / "data" / "jogging-1.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0 and "metrics written" in out and "interrupted" not in err, err


@pytest.mark.subprocess
def test_ctrl_c_while_pytorch_loads_is_one_line(tmp_path):
    """``import stif_core`` loads no PyTorch, so the command line's handler is in place before PyTorch loads."""
    env = os.environ | {"PYTHONPATH": str(Path(stif_core.__file__).parent.parent)}
    probe = subprocess.run([sys.executable, "-c", "import sys, stif_core; print('torch' in sys.modules)"], env=env,
                           capture_output=True, text=True, check=True)
    assert probe.stdout == "False\n"
    process = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "stif_core", "eval", "--baselines", "kcf",
                                "--sequences", "none", "--out", "out"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in process.stderr:  # each import's line as it ends: Ctrl-C once PyTorch has begun to load
        if re.search(r"\| +torch\.", line):
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    lines = [line for line in err.splitlines() if not line.startswith("import time:")]
    assert process.returncode == 130 and lines == ["interrupted while starting; nothing was written"], err


def test_sigterm_is_an_interruption_and_a_second_signal_while_stopping_is_one_line(capsys):
    """SIGTERM stops a command as Ctrl-C does (it keeps what it did, ``interrupted: ...``); a second Ctrl-C while
    it stops is one line, not a traceback from the clean-up or an ``atexit`` callback it lands in."""
    from stif_core.commands import interruptible

    ignored = signal.signal(signal.SIGTERM, lambda *_: None)  # the caller's own: without the guard, no stop
    started = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a foreground shell
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    cleaned = []

    def run(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here
        except KeyboardInterrupt:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C again during the clean-up
            time.sleep(0.05)
            cleaned.append(True)
            raise

    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):  # track.json says which signal stopped a run
            interruptible(run)(None)
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # a caller's own back
    finally:
        signal.signal(signal.SIGTERM, ignored)
        signal.signal(signal.SIGINT, started)
    assert cleaned == [True]
    err = capsys.readouterr().err
    assert "already stopping (signal 2 ignored)" in err and len(err.splitlines()) == 1


def test_one_stop_sent_to_the_process_and_then_its_group_is_one_stop_without_a_line(capsys):
    """``timeout -s INT`` signals the command and then its process group: the second SIGINT is the same stop."""
    from stif_core.commands import interruptible

    started = signal.signal(signal.SIGINT, signal.default_int_handler)

    def run(args):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            os.kill(os.getpid(), signal.SIGINT)  # the group's copy
            time.sleep(0.05)
            raise

    try:
        with pytest.raises(KeyboardInterrupt, match="SIGINT"):
            interruptible(run)(None)
    finally:
        signal.signal(signal.SIGINT, started)
    assert capsys.readouterr().err == ""
