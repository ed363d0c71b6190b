"""The stored training logs (``data/training_logs/<seed>.jsonl.gz``, ``stif_core.lab.training_logs``): one file per
run, the rows exactly as the run wrote them, read back through one function."""
import gzip
import json
from pathlib import Path

import pytest

from stif_core import paths
from stif_core.config import VARIANTS
from stif_core.lab.training_logs import (
    pack_training_logs,
    read_training_logs,
    store_training_logs,
    stored_training_logs,
    unpack_training_logs,
)

PROJECT = Path(__file__).resolve().parents[2]
LOG = [{"loss": 6.109512, "step": 0, "lr": 1e-05, "skipped": 0, "elapsed_s": 4.17},
       {"loss": 6.195816, "step": 1, "lr": 0.00040980000000000004, "skipped": 0, "elapsed_s": 6.214}]
VALIDATION = [{"step": 0, "val_loss": 6.150983, "gap": -0.105758, "best": True}]


def run_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in LOG))
    (folder / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in VALIDATION))
    return folder


def test_a_run_stored_reads_back_as_its_folder_row_for_row_and_line_for_line(tmp_path):
    folder = run_folder(tmp_path)
    stored = store_training_logs(folder, "stif_lite_full_s9", tmp_path / "full_s9.jsonl.gz")
    assert read_training_logs(stored) == read_training_logs(folder) == {"log": LOG, "validation": VALIDATION}
    lines = unpack_training_logs(stored)
    assert {p: "".join(line + "\n" for line in lines[p]) for p in lines} == \
        {p: (folder / f"{p}.jsonl").read_text() for p in ("log", "validation")}
    assert type(read_training_logs(stored)["log"][1]["lr"]) is float  # the same values, the same types
    # the same logs give the same bytes (no time stamp in the gzip header)
    assert pack_training_logs("x", {"log": "{}\n"}) == pack_training_logs("x", {"log": "{}\n"})


def test_a_shipped_run_is_found_by_name_in_the_project(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ENV_PROJECT, str(tmp_path))
    store_training_logs(run_folder(tmp_path), "stif_lite_full_s9")
    stored = stored_training_logs("stif_lite_full_s9")
    assert stored == tmp_path / "data" / "training_logs" / "stif_lite_full_s9.jsonl.gz" and stored.is_file()
    assert read_training_logs("stif_lite_full_s9")["validation"] == VALIDATION


def test_a_changed_row_or_a_lost_row_is_an_error_naming_the_file(tmp_path):
    stored = store_training_logs(run_folder(tmp_path), "r", tmp_path / "r.jsonl.gz")
    header, *rows = gzip.decompress(stored.read_bytes()).decode().splitlines()
    edited = tmp_path / "edited.jsonl.gz"
    edited.write_bytes(gzip.compress("\n".join([header, rows[0].replace("6.109512", "6.109513"), *rows[1:]]).encode()))
    with pytest.raises(ValueError, match=r"edited\.jsonl\.gz: the log rows do not match"):
        read_training_logs(edited)
    edited.write_bytes(gzip.compress("\n".join([header, *rows[1:]]).encode()))
    with pytest.raises(ValueError, match=r"edited\.jsonl\.gz: 2 rows, the header counts 3"):
        read_training_logs(edited)
    edited.write_bytes("\n".join(rows).encode())
    with pytest.raises(ValueError, match="not a gzip-compressed"):
        read_training_logs(edited)
    with pytest.raises(FileNotFoundError):
        read_training_logs(tmp_path / "missing.jsonl.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither log.jsonl nor validation.jsonl"):
        read_training_logs(tmp_path / "empty")


def test_every_shipped_seed_has_its_logs_stored_whole(monkeypatch):
    """All 18 runs: 1,200 steps and 13 checkpoints each, every row checked against the SHA-256 of the original
    files' text (the header keeps it), and the best val loss of the log is the one the weights record."""
    from stif_core.checkpoint import read_metadata

    monkeypatch.setenv(paths.ENV_PROJECT, str(PROJECT))
    seeds = [name for v in VARIANTS for name in paths.row_seeds(v)]
    assert len(seeds) == 18
    assert sorted(p.name for p in (PROJECT / "data" / "training_logs").iterdir()) == \
        sorted(f"{s}.jsonl.gz" for s in seeds)
    for name in seeds:
        logs = read_training_logs(name)
        assert [r["step"] for r in logs["log"]] == list(range(1200)), name
        assert [r["step"] for r in logs["validation"]] == list(range(0, 1201, 100)), name
        best = min(r["val_loss"] for r in logs["validation"])
        assert float(read_metadata(paths.checkpoint_path(name))["val_loss"]) == best, name
