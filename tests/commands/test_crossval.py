"""``crossval``: recipes trained on all folds but one and tracked on the held-out fold, pooled and paired."""
import json
import re
import shutil

import pytest
from helpers import cli

from stif_core.paths import default_data_root

SEQUENCES = ["uav-truck4_1", "uav-boat5", "uav-group1_1", "vot-traffic"]  # 16-25 frames each


@pytest.mark.data
def test_two_recipes_over_two_folds_pool_every_training_sequence_once(tmp_path):
    root = tmp_path / "data" / "sequences"
    for name in [*SEQUENCES, "dtb70-mountainbike6"]:
        shutil.copytree(default_data_root() / name, root / name)
    (root.parent / "splits.json").write_text(json.dumps({"train": SEQUENCES, "val": ["dtb70-mountainbike6"]}))
    tiny = {"num_workers": 0, "threads": 1, "batch_size": 2, "val_samples": 2, "checkpoint_every": 1,
            "warmup_steps": 1, "steps": 2}
    (tmp_path / "imagenet.json").write_text(json.dumps(tiny))
    (tmp_path / "nano.json").write_text(json.dumps(tiny | {"model": {"backbone": "nanotrack_v2"}}))
    args = ["crossval", "--config", str(tmp_path / "imagenet.json"), "--config", str(tmp_path / "nano.json"),
            "--folds", "2", "--baselines", "csrt", "--data-root", str(root), "--out", str(tmp_path / "cv")]
    run = cli(*args)
    assert run.returncode == 0, run.stderr
    rows = json.loads((tmp_path / "cv" / "crossval.json").read_text())
    assert set(rows) == {"imagenet", "nano", "csrt"}
    for row in rows.values():  # every training sequence tracked once, by a model that never trained on it
        assert sorted(row["per_sequence"]) == sorted(SEQUENCES)
    for fold in (0, 1):
        trained = json.loads((tmp_path / "cv" / f"nano_f{fold}" / "config.json").read_text())
        assert trained["split"] == f"train:except-fold-{fold}-of-2" and trained["seed"] == 0
        assert trained["model"]["backbone"] == "nanotrack_v2"
    table = run.stdout[run.stdout.index("pooled over their held-out sequences"):]
    assert re.search(r"^imagenet\s+[0-9.]+ \[.*\(reference\)", table, re.M)  # the first recipe is the reference
    assert re.search(r"^nano\s+[0-9.]+ \[[0-9., ]+\]\s+[-+][0-9.]+ \[", table, re.M)  # paired against it
    log = (tmp_path / "cv" / "imagenet_f0" / "log.jsonl").read_text()
    tracked = {p: p.stat().st_mtime_ns for p in (tmp_path / "cv").glob("eval_f*/*/otb/*.txt")}
    again = cli(*args)  # resumes: nothing trained or tracked again, the same pooled rows
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "cv" / "imagenet_f0" / "log.jsonl").read_text() == log
    assert tracked and {p: p.stat().st_mtime_ns for p in tracked} == tracked
    assert json.loads((tmp_path / "cv" / "crossval.json").read_text()) == rows
    bad = cli(*args[:-2], "--fold", "2", "--out", str(tmp_path / "cv2"))
    assert bad.returncode != 0 and "folds are numbered 0 to 1" in bad.stderr


@pytest.mark.data
def test_recipes_that_would_leak_or_collide_are_refused_before_any_work(tmp_path):
    tiny = {"num_workers": 0, "threads": 1, "batch_size": 2, "val_samples": 2, "steps": 2}
    cases = {"listed": (tiny | {"sequences": ["biker"]}, "remove its 'sequences'"),
             "blind": (tiny | {"val_samples": 0}, "give the recipe a val_split"),
             "peek": (tiny | {"val_split": "train:fold-0-of-2"}, "shares .* with held-out fold 0"),
             "own": (tiny | {"split": "val"}, "trains on split 'val', and crossval deals .* 'train'"),
             "eval": (tiny, "differ from each other, from the baselines and from 'eval'")}
    for name, (config, message) in cases.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(config))
        run = cli("crossval", "--config", str(tmp_path / f"{name}.json"), "--folds", "2", "--fold", "0",
                  "--out", str(tmp_path / name))
        assert run.returncode == 2 and re.search(message, run.stderr), (name, run.stderr)
        assert not (tmp_path / name).exists()
    (tmp_path / "ok.json").write_text(json.dumps(tiny))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "crossval.json").write_text("my notes")  # a user's folder is never an output folder
    run = cli("crossval", "--config", str(tmp_path / "ok.json"), "--folds", "2", "--fold", "0",
              "--out", str(tmp_path / "mine"))
    assert run.returncode == 2 and "holds files this package did not write" in run.stderr
    assert (tmp_path / "mine" / "crossval.json").read_text() == "my notes"
