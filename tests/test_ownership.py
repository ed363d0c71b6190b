"""Nothing of the user's deleted or overwritten: one ownership rule for every folder a command writes (a manifest of
what the tools wrote), no write through a link, one run per output folder, results keyed by the frames' content,
and a whole output replaced only by a build that succeeded."""
import errno
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from stif_core import files
from stif_core.data.sequences import Sequence
from stif_core.data.synthetic import synthetic_clip
from stif_core.data.video import sequence_video
from stif_core.evaluation.harness import evaluate
from stif_core.files import (
    MANIFEST,
    atomic,
    fresh_folder,
    output_folder,
    read_manifest,
    replace_folder,
    unaccounted,
    write_text,
)
from stif_core.tracking.baselines import make_baseline


def kcf():
    return make_baseline("kcf")


def snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_folder_another_command_made_is_not_replaced(tmp_path):
    clip = synthetic_clip(8, size=(96, 128), seed=1)
    evaluate({"kcf": kcf}, [clip], tmp_path / "R", progress=False)
    before = snapshot(tmp_path / "R")
    assert "metrics.json" in before and read_manifest(tmp_path / "R")["metrics.json"] == "eval"
    with pytest.raises(ValueError, match="never emptied"):
        replace_folder(tmp_path / "R", "book", lambda new: (new / "index.html").write_text("site"))
    assert snapshot(tmp_path / "R") == before


def test_a_user_file_beside_the_tools_files_keeps_the_folder_from_being_emptied(tmp_path):
    site = replace_folder(tmp_path / "site", "book", lambda new: (new / "index.html").write_text("one"))
    replace_folder(site, "book", lambda new: (new / "index.html").write_text("two"))  # its own: replaced
    assert (site / "index.html").read_text() == "two"
    (site / "thesis.tex").write_text("mine")
    with pytest.raises(ValueError, match=r"1 path\(s\) that book did not write, e.g. thesis.tex"):
        replace_folder(site, "book", lambda new: None)
    with pytest.raises(ValueError, match="thesis.tex"):
        fresh_folder(site)
    assert (site / "thesis.tex").read_text() == "mine"


def test_a_failed_build_keeps_the_previous_output(tmp_path):
    site = replace_folder(tmp_path / "site", "book", lambda new: (new / "index.html").write_text("good"))

    def broken(new):
        (new / "index.html").write_text("half")
        raise ValueError("a corrupt notebook")

    with pytest.raises(ValueError, match="a corrupt notebook"):
        replace_folder(site, "book", broken)
    assert (site / "index.html").read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".stif-lock")) == ["site"]  # no leftovers


def test_a_user_folder_is_never_taken_because_of_a_file_name(tmp_path):
    user = tmp_path / "U"
    user.mkdir()
    (user / "summary.md").write_text("my summary")
    (user / "thesis.tex").write_text("mine")
    with pytest.raises(ValueError, match="holds files this package did not write"):
        with output_folder(user, "report"):
            pass
    assert not (user / MANIFEST).exists()  # not marked by a command that failed
    with pytest.raises(ValueError, match="never emptied"):
        replace_folder(user, "book", lambda new: None)
    assert sorted(p.name for p in user.iterdir()) == ["summary.md", "thesis.tex"]


def test_a_file_the_tools_did_not_write_is_never_overwritten(tmp_path):
    with output_folder(tmp_path / "T", "track") as out:
        write_text(out / "track.json", "{}")
    (out / "boxes.txt").write_text("the user's boxes")  # put there by the user afterwards
    with output_folder(out, "track"):
        write_text(out / "track.json", '{"again": 1}')  # its own file: replaced
        with pytest.raises(ValueError, match="was not written by this tool"):
            write_text(out / "boxes.txt", "1,2,3,4\n")
    assert (out / "boxes.txt").read_text() == "the user's boxes"


def test_no_write_follows_a_link(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "victim.txt").write_text("keep")
    with output_folder(tmp_path / "out", "eval") as out:
        write_text(out / "boxes.txt", "1,2,3,4\n")
    (out / "boxes.txt").unlink()
    (out / "boxes.txt").symlink_to(elsewhere / "victim.txt")  # planted over a file of the tools
    (out / "kcf").symlink_to(elsewhere, target_is_directory=True)
    with output_folder(out, "eval"):
        with pytest.raises(ValueError, match="is a symbolic link"):
            write_text(out / "boxes.txt", "overwritten")
        with pytest.raises(ValueError, match="is a symbolic link"):
            write_text(out / "kcf" / "run.json", "{}")
    with pytest.raises(ValueError, match="is a symbolic link"):  # outside any held folder too
        write_text(out / "boxes.txt", "overwritten")
    assert (elsewhere / "victim.txt").read_text() == "keep" and sorted(os.listdir(elsewhere)) == ["victim.txt"]


def test_eval_does_not_write_through_a_planted_tracker_folder(tmp_path):
    clip = synthetic_clip(8, size=(96, 128), seed=1)
    evaluate({"kcf": kcf}, [clip], tmp_path / "out", progress=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out" / "csrt").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ValueError, match="is a symbolic link"):
        evaluate({"csrt": lambda: make_baseline("csrt")}, [clip], tmp_path / "out", progress=False)
    assert list(elsewhere.iterdir()) == []


def test_a_failed_write_leaves_the_earlier_file(tmp_path):
    clip = synthetic_clip(6, size=(96, 128), seed=2)
    video = sequence_video(clip, tmp_path / "clip.mp4")
    before = video.read_bytes()

    class Broken(Sequence):
        def frame(self, i):
            if i == 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().frame(i)

    with pytest.raises(OSError, match="No space left"):
        sequence_video(Broken(clip.name, clip.frames, clip.boxes), video)
    assert video.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no temporary file left


HOLD = textwrap.dedent("""
    import sys, time
    from stif_core.files import output_folder
    with output_folder(sys.argv[1], "eval"):
        print("held", flush=True)
        time.sleep(60)
""")


def test_one_run_per_output_folder_and_a_dead_runs_lock_is_taken_over(tmp_path, capsys):
    out = tmp_path / "out"
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=rf"is in use by another run \(pid {other.pid}, eval, started "):
            with output_folder(out, "eval"):
                pass
    finally:
        other.kill()
        other.wait()
    with output_folder(out, "eval"):  # the dead run's lock: taken over, and said
        assert json.loads((out / (files.LOCK + ".json")).read_text())["pid"] == os.getpid()
    assert f"taking over the lock of a run that is no longer running (pid {other.pid}, eval" in capsys.readouterr().err
    assert not (out / (files.LOCK + ".json")).exists()  # released at the end of a run


@pytest.mark.parametrize("name", [files.LOCK, files.LOCK + ".json"])
def test_a_link_planted_at_a_lock_is_refused_naming_it(tmp_path, name):
    (tmp_path / "out").mkdir()
    (tmp_path / "victim").write_text("keep")
    (tmp_path / "out" / name).symlink_to(tmp_path / "victim")
    with pytest.raises(ValueError, match=f"{tmp_path / 'out' / name} is a link or not a file"):
        with output_folder(tmp_path / "out", "eval"):
            pass
    assert (tmp_path / "victim").read_text() == "keep"


def test_two_evals_on_one_folder_cannot_drop_each_others_rows(tmp_path):
    clip = synthetic_clip(8, size=(96, 128), seed=3)
    with output_folder(tmp_path / "out", "eval"):  # held by this process: re-entered, rows merged in order
        evaluate({"kcf": kcf}, [clip], tmp_path / "out", progress=False)
        evaluate({"csrt": lambda: make_baseline("csrt")}, [clip], tmp_path / "out", progress=False)
    assert set(json.loads((tmp_path / "out" / "metrics.json").read_text())) == {"kcf", "csrt"}


def frames_folder(root, clip):
    root.mkdir(parents=True)
    paths = []
    for i in range(len(clip)):
        paths.append(root / f"{i:04d}.png")
        Image.fromarray(clip.frame(i)).save(paths[-1])
    return Sequence("seq", paths, clip.boxes)


def test_results_of_other_frames_of_the_same_names_and_sizes_are_not_reused(tmp_path):
    clip = synthetic_clip(8, size=(96, 128), seed=4)
    seq = frames_folder(tmp_path / "data" / "seq", clip)
    evaluate({"kcf": kcf}, [seq], tmp_path / "out", progress=False)
    for path in seq.frames[1:]:  # black frames, padded to the same byte size (PNG readers ignore the tail)
        size = path.stat().st_size
        Image.fromarray(np.zeros((96, 128, 3), np.uint8)).save(path)
        path.write_bytes(path.read_bytes() + bytes(size - path.stat().st_size))
        assert path.stat().st_size == size
    tracked = []

    def counting():
        tracked.append(1)
        return kcf()

    evaluate({"kcf": counting}, [seq], tmp_path / "out", progress=False)
    assert tracked  # tracked again on the black frames, not read back


def digested(tmp_path, frames: int, seed: int):
    """A sequence of PNG frames, its fingerprint, and the digest cache that fingerprint was stored in."""
    from stif_core.data import digests

    seq = frames_folder(tmp_path / "data" / "seq", synthetic_clip(frames, size=(96, 128), seed=seed))
    store = tmp_path / "digests.json"
    first = digests.FrameDigests(store)
    printed = seq.fingerprint(first)
    first.save()
    return seq, printed, store


def test_unchanged_frames_are_not_read_again(tmp_path, monkeypatch):
    from stif_core.data import digests

    seq, print_one, store = digested(tmp_path, 5, 5)
    monkeypatch.setattr(digests, "file_digest", lambda path: pytest.fail(f"{path} read again"))
    assert seq.fingerprint(digests.FrameDigests(store)) == print_one
    os.utime(seq.frames[2], ns=(1, 1))  # touched: read again
    monkeypatch.undo()
    again = digests.FrameDigests(store)
    assert seq.fingerprint(again) == print_one and again.changed


def test_the_final_state_is_written_when_the_disk_is_full(tmp_path, monkeypatch):
    from stif_core.lab import track

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(track, "write_frames", full)
    real = files.write_text
    monkeypatch.setattr(track, "write_text",
                        lambda path, text: full() if path.name == "track.json" else real(path, text))

    class Source:
        path, size, fps, announced = tmp_path / "v.mp4", (128, 96), 30.0, 5

    with pytest.raises(OSError, match="No space left"):
        track.track_video(Source(), np.array([10, 10, 20, 20.0]), object(), tmp_path / "run", progress=False)
    status = json.loads((tmp_path / "run" / "track.json").read_text())
    assert status["complete"] is False  # the error names where it was writing, not a temporary file
    written = f"{tmp_path / 'run'}/boxes.txt, frames.csv or track.mp4"
    assert status["stopped"].startswith(f"WriteError: cannot write {written}")


def test_a_broken_atomic_write_is_cleaned_up(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic(tmp_path / "x.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_a_folder_of_many_files_is_refused_after_the_first_few(tmp_path, monkeypatch):
    """A folder of other files is refused naming a few of them, without walking all of it."""
    import stif_core.files as files

    folder = tmp_path / "home"
    for k in range(50):
        (folder / f"d{k:02d}").mkdir(parents=True)
        (folder / f"d{k:02d}" / "notes.txt").write_text("x")
    seen = []
    walk = files.os.walk
    monkeypatch.setattr(files.os, "walk", lambda *a, **k: (seen.append(step) or step for step in walk(*a, **k)))
    with pytest.raises(ValueError, match=r"holds 3 or more path\(s\) no tool of this package wrote, e.g. "
                                         r"d00/notes.txt, d01/notes.txt, d02/notes.txt"):
        files.check_replaceable(folder, None, "--out")
    assert len(seen) <= 4  # the top folder and the first three it holds, not all 51


def test_unaccounted_lists_links_and_files_of_nested_folders(tmp_path):
    with output_folder(tmp_path / "run", "report") as out:
        write_text(out / "summary.md", "x")
    fresh_folder(out / "row")
    with output_folder(out / "row" / "eval", "eval") as inner:
        write_text(inner / "metrics.json", "{}")
    assert unaccounted(out) == []
    (out / "row" / "eval" / "notes.txt").write_text("mine")
    (out / "link").symlink_to(tmp_path)
    assert unaccounted(out) == ["link", "row/eval/notes.txt"]


# ------------------------------------------------------------------ cases of a fresh adversarial probe


def run_cli(capsys, *args):
    from stif_core.__main__ import main

    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.data
def test_clip_never_replaces_a_file_unless_asked_nor_writes_through_a_link_or_into_the_data(tmp_path, capsys):
    from stif_core.paths import default_data_root

    mine = tmp_path / "mine.mp4"
    mine.write_text("precious")
    code, err = run_cli(capsys, "clip", "crossing", str(mine), "--frames", "3")
    assert code == 2 and "exists; clip never replaces a file unless asked" in err and mine.read_text() == "precious"
    assert run_cli(capsys, "clip", "crossing", str(mine), "--frames", "3", "--replace")[0] == 0
    assert mine.read_bytes() != b"precious"
    victim = tmp_path / "victim.mp4"
    victim.write_text("keep")
    (tmp_path / "link.mp4").symlink_to(victim)
    code, err = run_cli(capsys, "clip", "crossing", str(tmp_path / "link.mp4"), "--frames", "3", "--replace")
    assert code == 2 and "is a symbolic link" in err and victim.read_text() == "keep"
    code, err = run_cli(capsys, "clip", "crossing", str(tmp_path / "x.txt"), "--frames", "3")
    assert code == 2 and "must end in .mp4" in err
    inside = default_data_root() / "crossing" / "new" / "clip.mp4"
    code, err = run_cli(capsys, "clip", "crossing", str(inside), "--frames", "3")
    assert code == 2 and "lies inside the data root" in err and not inside.parent.exists()  # no folder made there


def test_a_stopped_track_keeps_the_earlier_complete_run(tmp_path, monkeypatch):
    from stif_core.lab import track

    def frames(lines, complete):
        def write(source, box, tracker, boxes, table, video, overlays, progress, summary, name):
            boxes.write_text(lines)
            table.write_text("frame\n")
            video.write_bytes(b"mp4")
            if not complete:
                summary["frames_tracked"] = lines.count("\n")
                raise KeyboardInterrupt
            summary["complete"] = True
        return write

    class Source:
        path, size, fps, announced = tmp_path / "v.mp4", (128, 96), 30.0, 5

    box = np.array([10, 10, 20, 20.0])
    monkeypatch.setattr(track, "write_frames", frames("1,1,2,2\n" * 5, True))
    track.track_video(Source(), box, object(), tmp_path / "run", progress=False)
    monkeypatch.setattr(track, "write_frames", frames("9,9,9,9\n", False))
    with pytest.raises(KeyboardInterrupt):
        track.track_video(Source(), box, object(), tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert (run / "boxes.txt").read_text() == "1,1,2,2\n" * 5
    assert json.loads((run / "track.json").read_text())["complete"]
    assert (run / "partial" / "boxes.txt").read_text() == "9,9,9,9\n"
    assert json.loads((run / "partial" / "track.json").read_text())["stopped"] == "interrupted (Ctrl-C)"
    with pytest.raises(KeyboardInterrupt):  # stopped again: its own partial/ is no stranger's
        track.track_video(Source(), box, object(), tmp_path / "run", progress=False)
    with pytest.raises(KeyboardInterrupt):  # a folder without a complete run keeps the stopped one in place
        track.track_video(Source(), box, object(), tmp_path / "fresh", progress=False)
    assert (tmp_path / "fresh" / "boxes.txt").read_text() == "9,9,9,9\n"


def test_weights_that_are_not_finite_are_refused(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from stif_core.checkpoint import load_model
    from stif_core.paths import checkpoint_path

    shipped = checkpoint_path("stif_lite_full")
    state = load_file(str(shipped))
    with safe_open(str(shipped), framework="pt") as f:
        metadata = f.metadata()
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name][...] = float("nan")
    save_file(state, str(tmp_path / "nan.safetensors"), metadata=metadata)
    with pytest.raises(ValueError, match=rf"non-finite weights \(NaN or infinity\) in 1 tensor\(s\), e.g. {name}"):
        load_model(tmp_path / "nan.safetensors")


def test_a_score_that_is_not_finite_is_named_with_its_file_and_row(tmp_path):
    from stif_core.evaluation.results import read_metrics

    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"stif": {"overall": {"auc": 0.5}, "per_sequence": {"biker": {"auc": 0.5}}}})
                    .replace("0.5}}", "NaN}}"))
    with pytest.raises(ValueError, match=r"metrics file .*metrics.json, row 'stif': per_sequence 'biker': auc is nan"):
        read_metrics(path)


def test_a_json_key_given_twice_and_a_sequence_in_two_splits_are_refused(tmp_path):
    from stif_core.data.sequences import load_split

    (tmp_path / "sequences").mkdir()
    (tmp_path / "splits.json").write_text('{"train": ["a"], "val": ["b"], "val": ["c"]}')
    with pytest.raises(ValueError, match=r"gives the key\(s\) \['val'\] more than once"):
        load_split("val", tmp_path / "sequences")
    (tmp_path / "splits.json").write_text('{"train": ["a", "b"], "val": ["b"]}')
    with pytest.raises(ValueError, match=r"splits 'val' and 'train' share 1 sequence\(s\), e.g. \['b'\]"):
        load_split("val", tmp_path / "sequences")


def test_a_training_step_that_cannot_fit_is_refused_before_any_work():
    from stif_core.config import make_config
    from stif_core.train import check_training_fits

    lite = make_config("lite", "full")
    check_training_fits(lite, 8, 16 * 2**30)  # the shipped recipe's crops
    with pytest.raises(ValueError, match=r"training crops of 4001 pixels, 2 samples a step, need about"):
        check_training_fits(make_config("lite", "full", crop_size=4001), 2, 16 * 2**30)


def test_report_and_references_refuse_before_any_work(tmp_path, capsys):
    from stif_core.lab.report import run

    with pytest.raises(FileNotFoundError, match="no sequences folder at"):
        run(tmp_path / "out", data_root=str(tmp_path / "nowhere"))
    assert not (tmp_path / "out").exists()
    user = tmp_path / "refs"
    user.mkdir()
    (user / "spread.md").write_text("mine")
    code, err = run_cli(capsys, "references", "--out", str(user))
    assert code == 2 and "holds files this package did not write" in err
    assert sorted(p.name for p in user.iterdir()) == ["spread.md"]


def test_book_names_the_command_whose_files_it_will_not_replace(tmp_path):
    clip = synthetic_clip(8, size=(96, 128), seed=1)
    evaluate({"kcf": kcf}, [clip], tmp_path / "R", progress=False)
    with pytest.raises(ValueError, match=r"path\(s\) that book did not write, e.g."):
        replace_folder(tmp_path / "R", "book", lambda new: None)


def test_frames_rewritten_with_their_old_modification_time_are_read_again(tmp_path):
    from stif_core.data import digests

    seq, before, store = digested(tmp_path, 4, 6)
    path = seq.frames[1]
    st = path.stat()
    Image.fromarray(np.zeros((96, 128, 3), np.uint8)).save(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the old modification time put back
    assert seq.fingerprint(digests.FrameDigests(store)) != before


def test_bench_and_report_refuse_before_any_work(tmp_path, capsys):
    from stif_core.lab.report import run

    mine = tmp_path / "bench.json"
    mine.write_text("mine")
    code, err = run_cli(capsys, "bench", "--json", str(mine))
    assert code == 2 and "exists; bench never replaces a file" in err and mine.read_text() == "mine"
    (tmp_path / "data" / "sequences").mkdir(parents=True)
    with pytest.raises(ValueError, match="lies inside the data root"):
        run(tmp_path / "data" / "sequences" / "rep", data_root=str(tmp_path / "data" / "sequences"))
    assert not (tmp_path / "data" / "sequences" / "rep").exists()
