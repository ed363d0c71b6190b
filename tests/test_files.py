"""Nothing deleted that the user did not name: names that become paths are checked as names, a folder is replaced
only when a tool made it, and output locations are checked before any work starts."""
import json
import os

import pytest
from helpers import cli

from stif_core.files import (
    MANIFEST,
    check_name,
    fresh_folder,
    output_folder,
    read_json,
    writable_dir,
    writable_file,
    write_text,
)


def tree(root):
    """Every path under ``root`` with its size (files) or None (folders)."""
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else None) for p in root.rglob("*")}


@pytest.mark.parametrize("bad", ["", " ", ".", "..", "../x", "a/b", "/tmp", "a\\b", "tab\there", "nul\x00"])
def test_a_name_that_could_reach_another_folder_is_refused(bad):
    with pytest.raises(ValueError, match="is not a valid name"):
        check_name(bad, "label")


def test_plain_names_pass():
    assert [check_name(n, "label") for n in ("zen5", "stif-full-ko-no_m2q", "a.b", "x y")] == \
        ["zen5", "stif-full-ko-no_m2q", "a.b", "x y"]


def test_only_a_folder_the_tools_made_is_replaced(tmp_path):
    made = fresh_folder(tmp_path / "run")
    with output_folder(made, "eval"):
        write_text(made / "values.jsonl", "{}\n")
    fresh_folder(made)  # every file a tool's: emptied
    assert sorted(p.name for p in made.iterdir()) == [MANIFEST]
    user = tmp_path / "mine"
    user.mkdir()
    (user / "thesis.tex").write_text("keep me")
    with pytest.raises(ValueError, match="it is never emptied"):
        fresh_folder(user)
    (tmp_path / "file").write_text("keep me too")
    with pytest.raises(ValueError, match="is not a folder this tool made"):
        fresh_folder(tmp_path / "file")
    assert (user / "thesis.tex").read_text() == "keep me" and (tmp_path / "file").read_text() == "keep me too"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (fresh_folder(empty) / MANIFEST).is_file()  # an empty folder holds nothing to lose


def test_output_locations_are_checked_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        writable_dir(tmp_path / "file")
    with pytest.raises(ValueError, match="cannot be created"):
        writable_dir(tmp_path / "file" / "below")
    with pytest.raises(ValueError, match="is a folder; give a file name"):
        writable_file(tmp_path, "--json")
    assert writable_dir(tmp_path / "new" / "out").is_dir()


def test_json_errors_name_the_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("{")
    with pytest.raises(ValueError, match=f"metrics file {path} is not valid JSON"):
        read_json(path, "metrics file")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_json(tmp_path / "none.json")


@pytest.mark.subprocess
@pytest.mark.parametrize("label", ["..", ".", "", "/tmp", "a/b"])
def test_references_widen_refuses_a_label_that_is_not_a_name_without_touching_anything(tmp_path, label):
    """``--widen ..`` once deleted the parent of ``--out``; an empty label started the hour-long study."""
    out = tmp_path / "runs" / "spread"
    out.mkdir(parents=True)
    (tmp_path / "runs" / "keep.txt").write_text("a user's file")
    before = tree(tmp_path)
    run = cli("references", "--out", str(out), "--widen", label, cwd=tmp_path)
    assert run.returncode == 2 and "is not a valid name" in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert tree(tmp_path) == before


@pytest.mark.subprocess
def test_references_never_deletes_a_configuration_folder_it_did_not_make(tmp_path):
    out = tmp_path / "spread"
    (out / "plain").mkdir(parents=True)
    (out / "plain" / "notes.md").write_text("a user's file")
    before = tree(tmp_path)
    run = cli("references", "--out", str(out), "--configs", "plain", cwd=tmp_path)
    assert run.returncode == 2 and "holds files this package did not write" in run.stderr, run.stderr
    assert tree(tmp_path) == before


@pytest.mark.subprocess
def test_an_output_that_is_a_file_or_a_json_that_is_a_folder_is_one_line(tmp_path):
    (tmp_path / "taken").write_text("x")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"synthetic": True, "steps": 1, "out": str(tmp_path / "taken")}))
    for args, message in ((["train", "--config", str(config)], "is a file, not a folder"),
                          (["bench", "--json", str(tmp_path)], "is a folder; give a file name")):
        run = cli(*args, cwd=tmp_path)
        assert run.returncode == 2 and message in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert (tmp_path / "taken").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(ValueError, match="is not writable"):
        writable_dir(locked)


@pytest.mark.subprocess
def test_a_folder_of_someone_elses_files_is_never_written_into(tmp_path):
    """``report --out ~`` would have overwritten a ``summary.md`` there; eval and train write files by name too."""
    from stif_core.data.synthetic import synthetic_clip
    from stif_core.evaluation.harness import evaluate
    from stif_core.files import owned_dir

    mine = tmp_path / "home"
    mine.mkdir()
    (mine / "summary.md").write_text("my notes")
    (mine / "thesis.tex").write_text("keep me")
    with pytest.raises(ValueError, match="holds files this package did not write"):
        evaluate({"kcf": None}, [synthetic_clip(5, size=(96, 128), seed=1)], mine, progress=False)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"synthetic": True, "steps": 1, "out": str(mine)}))
    run = cli("train", "--config", str(config), cwd=tmp_path)
    assert run.returncode == 2 and "holds files this package did not write" in run.stderr, run.stderr
    with pytest.raises(ValueError, match="holds files this package did not write"):
        owned_dir(mine, "--out")  # a summary.md does not make it a report folder
    assert sorted(p.name for p in mine.iterdir()) == ["summary.md", "thesis.tex"]
