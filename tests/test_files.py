"""Nothing deleted that the user did not name: names that become paths are checked as names, a folder is replaced
only when a tool made it, and output locations are checked before any work starts."""
import json
import os

import pytest
from helpers import cli

from stif_core.files import (
    MANIFEST,
    check_name,
    checked_target,
    fresh_folder,
    output_folder,
    outside_data,
    read_json,
    save_manifest,
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


def test_a_write_that_finds_no_room_names_its_file_and_keeps_the_earlier_one(tmp_path):
    """A full disk or a file-size limit reaches a writer as an ``OSError`` without a file name (``[Errno 28] No
    space left on device``): it names the file being written, and the earlier file stays."""
    import errno

    from stif_core.files import atomic, open_append

    path = tmp_path / "metrics.json"
    write_text(path, "earlier")
    for code, why in ((errno.ENOSPC, "No space left on device"), (errno.EFBIG, "File too large")):
        with pytest.raises(OSError, match=f"^cannot write {path}: {why}; the earlier file, if any, is kept$"):
            with atomic(path) as tmp:
                tmp.write_text("half")
                raise OSError(code, os.strerror(code))
    assert path.read_text() == "earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    with open_append(tmp_path / "log.jsonl") as log:  # opened by name: its errors name it
        assert log.name == str(tmp_path / "log.jsonl")


def test_json_nested_too_deeply_or_too_large_is_one_line_naming_the_file(tmp_path):
    """Python's JSON parser recurses: 100,000 nested lists were a RecursionError traceback; a 2 GB file was read
    whole before it was refused."""
    from stif_core.checkpoint import model_metadata

    deep = tmp_path / "config.json"
    deep.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ValueError, match=f"training config {deep} holds JSON nested too deeply to read"):
        read_json(deep, "training config")
    with pytest.raises(ValueError, match='checkpoint w.safetensors: metadata "model" holds JSON nested too deeply'):
        model_metadata("w.safetensors", {"model": "[" * 10_000 + "]" * 10_000})
    big = tmp_path / "metrics.json"
    with open(big, "wb") as f:  # sparse: 80 MiB that no reader should read
        f.truncate(80 * 2**20)
    with pytest.raises(ValueError, match=f"metrics {big} is 80 MiB, over the 64 MiB this tool reads"):
        read_json(big, "metrics")


def test_temporary_files_of_runs_that_died_are_removed_by_the_next_run(tmp_path):
    """A kill (SIGKILL, SIGTERM) during a write leaves ``.<name>.stif-<pid>.tmp``: the next run that holds the folder
    removes those of processes no longer running; a live process's (a notebook's kernel writing there) stay, and so
    do a user's hidden files whatever their names look like."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    with output_folder(tmp_path, "track"):
        write_text(tmp_path / "boxes.txt", "1,2,3,4\n")
    (tmp_path / "sub").mkdir()
    left = [tmp_path / f".boxes.stif-{pid}.tmp.txt", tmp_path / f"..stif_core-files.json.stif-{pid}.tmp",
            tmp_path / "sub" / f".track.stif-{pid}.tmp.mp4"]
    live = tmp_path / f".frames.stif-{os.getpid()}.tmp.csv"
    users = [tmp_path / ".holiday.2019.old.jpg", tmp_path / f".notes.{pid}.tmp"]
    for path in (*left, live, *users):
        path.write_text("cut")
    with output_folder(tmp_path, "track"):
        assert not any(p.exists() for p in left) and live.exists() and all(p.exists() for p in users)


def test_an_output_inside_the_default_data_root_is_refused_whatever_data_root_is_given(tmp_path, monkeypatch):
    """A run on a copy of the data (``--data-root COPY``) never writes into the original either."""
    original = tmp_path / "data" / "sequences"
    original.mkdir(parents=True)
    monkeypatch.setattr("stif_core.files.default_data_root", lambda: original)
    with pytest.raises(ValueError, match="lies inside the data root"):
        outside_data(original / "biker" / "out", tmp_path / "copy", "--out")
    assert outside_data(tmp_path / "runs", tmp_path / "copy", "--out") == (tmp_path / "runs").resolve()
    with pytest.raises(ValueError, match="--out is empty"):
        outside_data("", tmp_path / "copy", "--out")


def test_a_folder_of_empty_folders_is_a_users_and_never_replaced(tmp_path):
    """The tools leave no empty folder, so one under a target is a user's (book had deleted ``photos2019/``)."""
    (tmp_path / "site" / "photos2019" / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match="photos2019/sub/"):
        fresh_folder(tmp_path / "site")
    assert (tmp_path / "site" / "photos2019" / "sub").is_dir()


def test_a_link_inside_a_held_output_folder_is_not_followed_as_a_nested_output(tmp_path):
    """crossval holds its --out and opens <out>/eval_f0 as an eval output: a link planted there is refused."""
    (tmp_path / "victim").mkdir()
    with output_folder(tmp_path / "cv", "crossval") as out:
        (out / "eval_f0").symlink_to(tmp_path / "victim")
        with pytest.raises(ValueError, match="passes through the link .*eval_f0 inside the output folder"):
            with output_folder(out / "eval_f0", "eval"):
                pass
        with output_folder(out / "a_f0", "train"):  # a real subfolder is fine
            pass
    assert list((tmp_path / "victim").iterdir()) == []


def test_sequence_folders_linked_from_a_data_root_are_data_too(tmp_path, monkeypatch):
    store, root = tmp_path / "store" / "biker", tmp_path / "data" / "sequences"
    store.mkdir(parents=True)
    root.mkdir(parents=True)
    (root / "biker").symlink_to(store)
    monkeypatch.setattr("stif_core.files.default_data_root", lambda: None)
    with pytest.raises(ValueError, match="lies inside the sequence folder linked from a data root"):
        outside_data(store / "out", root, "--out")


def test_a_folder_made_for_a_run_that_wrote_nothing_is_removed_and_any_other_kept(tmp_path):
    """A refused run leaves no folder holding only its lock; a folder that was there, or one the run wrote into,
    stays."""
    new, kept, there = tmp_path / "new", tmp_path / "kept", tmp_path / "there"
    there.mkdir()
    for folder in (new, there):
        with pytest.raises(ValueError, match="refused"), output_folder(folder, "cache"):
            raise ValueError("refused")
    with output_folder(kept, "cache"):
        write_text(kept / "boxes.txt", "1,2,3,4\n")
    mine = tmp_path / "mine"
    with pytest.raises(ValueError, match="refused"), output_folder(mine, "cache"):
        (mine / "notes.txt").write_text("mine")  # the user's, put there while the run held the folder
        raise ValueError("refused")
    assert not new.exists() and there.is_dir() and (kept / "boxes.txt").is_file()
    assert (mine / "notes.txt").read_text() == "mine" and (mine / MANIFEST).is_file()


def test_a_folder_is_the_output_of_one_command(tmp_path):
    """``eval --out`` of a ``track`` folder (or any command's folder another's) is refused before a file is
    written: one command's names never land among another's. The same command, or one that holds a subfolder of
    its own, goes on."""
    out = tmp_path / "run"
    with output_folder(out, "track"):
        write_text(out / "boxes.txt", "1,2,3,4\n")
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(ValueError, match=rf"^--out {out} holds the output of another command \(track, e.g. "
                                         r"boxes.txt\); each command writes into a folder of its own"):
        with output_folder(out, "eval"):
            write_text(out / "metrics.json", "{}")
    assert sorted(p.name for p in out.iterdir()) == before
    with output_folder(out, "track"), output_folder(out / "eval", "eval"):
        write_text(out / "eval" / "metrics.json", "{}")
    assert (out / "eval" / "metrics.json").is_file()


def test_a_failed_run_leaves_no_empty_folder_nor_fragment(tmp_path):
    """A report that failed after listing its outputs (their folders made) and after a kernel wrote a figure:
    the folders it never filled are gone, the kernel's fragment is merged into the manifest; a run that wrote
    nothing leaves no folder at all."""
    out = tmp_path / "report"
    with pytest.raises(ValueError, match="a notebook failed"), output_folder(out, "report"):
        checked_target(out / "ablation" / "full" / "10_ablation.ipynb")
        (out / "fig.png").write_bytes(b"png")  # a kernel's figure: it holds no folder, it leaves a fragment
        save_manifest(out, {"fig.png": "ipykernel_launcher.py"}, ".stif_core-files.999.json")
        raise ValueError("a notebook failed")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, ".stif_core.lock", "fig.png"]
    assert json.loads((out / MANIFEST).read_text()) == {"command": "report",
                                                        "files": {"fig.png": "ipykernel_launcher.py"}}
    with pytest.raises(ValueError, match="a notebook failed"), output_folder(tmp_path / "none", "report"):
        checked_target(tmp_path / "none" / "notebooks" / "01.ipynb")
        raise ValueError("a notebook failed")
    assert not (tmp_path / "none").exists()


def test_a_run_stopped_before_it_wrote_a_file_of_its_own_resumes_in_its_folder(tmp_path):
    """A sweep stopped while its first training wrote (the top folder holds only the training's folder) is taken
    again by the same command; a folder holding a user's file beside such subfolders is still refused."""
    top = tmp_path / "sweep"
    with pytest.raises(KeyboardInterrupt), output_folder(top, "sweep"):
        with output_folder(top / "train" / "full_s0", "train"):
            write_text(top / "train" / "full_s0" / "log.jsonl", "{}\n")
            raise KeyboardInterrupt
    with output_folder(top, "sweep"):
        pass
    (top / MANIFEST).unlink()  # a folder as earlier versions left it: only the tools' subfolders
    with output_folder(top, "sweep"):
        pass
    (top / MANIFEST).unlink()
    (top / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files this package did not write"), output_folder(top, "sweep"):
        pass


def test_a_file_listed_in_a_subfolder_is_the_tools_for_the_holder_of_the_folder_above(tmp_path):
    """``references --notebooks 04`` rewrites each configuration's values.jsonl, which the notebook kernels listed
    in that configuration's folder; a user's file beside it stays refused."""
    from stif_core.files import open_append

    out = tmp_path / "spread"
    with output_folder(out, "references"):
        fresh_folder(out / "plain")
    with open_append(out / "plain" / "values.jsonl") as f:  # a kernel's record: it holds no folder
        f.write("{}\n")
    (out / "plain" / "notes.txt").write_text("mine")
    with output_folder(out, "references"):
        write_text(out / "plain" / "values.jsonl", "")
        with pytest.raises(ValueError, match="notes.txt exists and was not written by this tool"):
            write_text(out / "plain" / "notes.txt", "x")
    assert (out / "plain" / "values.jsonl").read_text() == "" and (out / "plain" / "notes.txt").read_text() == "mine"


def test_a_folder_built_whole_inside_another_does_not_block_the_outer_ones_rebuild(tmp_path):
    """``book --out bk/sub`` leaves its lock in ``bk``: the tools' bookkeeping, not a file of the user's."""
    from stif_core.files import replace_folder

    def build(folder):
        (folder / "index.html").write_text("<html></html>")

    replace_folder(tmp_path / "bk", "book", build)
    replace_folder(tmp_path / "bk" / "sub", "book", build)
    replace_folder(tmp_path / "bk", "book", build)
    assert sorted(p.name for p in (tmp_path / "bk").iterdir() if not p.name.startswith(".")) == ["index.html"]
