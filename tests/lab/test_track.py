"""``track``: one's own video gives the harness's boxes on the same frames, per-frame internals that obey their
definitions, and output that says when it is partial."""
import json
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers import Lossy, cli

import stif_core.lab.track as track_module
from stif_core.checkpoint import load_model
from stif_core.data.sequences import Sequence
from stif_core.data.synthetic import synthetic_clip
from stif_core.data.video import FrameSource, sequence_video
from stif_core.evaluation.harness import track_sequence
from stif_core.files import output_folder, write_text
from stif_core.lab.track import default_folder, parse_box, track_video, whole_rows
from stif_core.tracking.tracker import STIFTracker


@pytest.fixture(scope="module")
def model():
    return load_model("stif_lite_full")


@pytest.fixture(scope="module")
def clip():
    return synthetic_clip(30, seed=5)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, model, clip):
    folder = tmp_path_factory.mktemp("track")
    path = sequence_video(clip, folder / "clip.mp4")
    summary = track_video(FrameSource(path), clip.boxes[0], STIFTracker(model, engine="onnx"), folder / "run",
                          progress=False)
    return folder, summary


def test_track_gives_the_harness_boxes_on_the_same_frames(tracked, model, clip):
    folder, summary = tracked
    decoded = np.stack([f.image for f in FrameSource(folder / "clip.mp4")])  # (L, H, W, 3) as track read them
    boxes, _ = track_sequence(STIFTracker(model, engine="onnx"), Sequence("clip", decoded, clip.boxes), progress=False)
    written = np.loadtxt(folder / "run" / "boxes.txt", delimiter=",")
    np.testing.assert_allclose(written, boxes, atol=0.01)  # boxes.txt holds 2 decimals
    assert summary["complete"] and summary["frames_tracked"] == 30 and summary["stopped"] is None


def test_the_per_frame_internals_obey_their_definitions(tracked):
    folder, _ = tracked
    table = pd.read_csv(folder / "run" / "frames.csv")
    assert table["frame"].tolist() == list(range(30))
    later = table.iloc[1:]
    weights = later.filter(like="weight_").to_numpy()  # (L - 1, most entries), NaN where memory held fewer
    np.testing.assert_allclose(np.nansum(weights, axis=1), 1, atol=1e-4)  # eq. 3's softmax over the memory
    memory = later.filter(like="memory_").to_numpy()
    assert (np.isnan(weights) == np.isnan(memory)).all()
    assert (np.nanmax(memory, axis=1) < later["frame"].to_numpy()).all()  # only past frames in memory
    for name in ("attention_entropy", "attention_mass", "gate_memory", "gate_query", "peak_score"):
        assert later[name].between(0, 1).all(), name
    assert (later["attention_mass"] > later["attention_uniform"]).mean() > 0.5  # it reads the target more often
    video = cv2.VideoCapture(str(folder / "run" / "track.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 30


class Interrupted(FrameSource):
    """A source whose reader is interrupted (Ctrl-C) after ``stop`` frames."""

    stop = 7

    def __iter__(self):
        for frame in super().__iter__():
            if frame.index == self.stop:
                raise KeyboardInterrupt
            yield frame


def test_an_interrupted_run_keeps_its_frames_and_says_it_is_partial(tmp_path, tracked, model):
    folder, _ = tracked
    with pytest.raises(KeyboardInterrupt):
        track_video(Interrupted(folder / "clip.mp4"), np.array([100, 80, 40, 30.0]), STIFTracker(model),
                    tmp_path, progress=False)
    status = json.loads((tmp_path / "track.json").read_text())
    assert (status["complete"], status["frames_tracked"], status["stopped"]) == (False, 7, "interrupted (Ctrl-C)")
    assert len((tmp_path / "boxes.txt").read_text().splitlines()) == 7
    assert len(pd.read_csv(tmp_path / "frames.csv")) == 7


@pytest.mark.subprocess
def test_a_broken_tail_is_tracked_up_to_its_last_good_frame_and_marked_partial(tmp_path, clip):
    """The frames before the break are kept, and the command exits with 1: it tracked less than the video."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    for i in range(12):
        writer.write(cv2.cvtColor(clip.frame(i), cv2.COLOR_RGB2BGR))
    writer.release()
    path.write_bytes(path.read_bytes()[:int(path.stat().st_size * 0.6)])
    out = tmp_path / "out"
    done = cli("track", str(path), "--box", ",".join(map(str, clip.boxes[0])), "--out", str(out))
    assert done.returncode == 1 and "PARTIAL" in done.stdout and "decoding stopped after frame" in done.stderr
    summary = json.loads((out / "track.json").read_text())
    assert not summary["complete"] and "broken or cut tail" in summary["stopped"]
    assert 0 < summary["frames_tracked"] < 12
    assert len((out / "boxes.txt").read_text().splitlines()) == summary["frames_tracked"]


@pytest.mark.parametrize("box, message", [((400, 10, 20, 20), "lies outside the 320x240 frame"),
                                          ((10, 10, 0, 20), "under one pixel wide or high"),
                                          ((10, 10, 0.5, 20), "under one pixel wide or high"),
                                          ((np.nan, 10, 5, 5), "four finite numbers")])
def test_a_first_box_that_does_not_fit_the_frame_is_refused_before_any_file(tmp_path, tracked, model, box, message):
    folder, _ = tracked
    with pytest.raises(ValueError, match=message):
        track_video(FrameSource(folder / "clip.mp4"), np.array(box, dtype=float), STIFTracker(model), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_link_planted_at_an_output_is_refused_before_any_frame(tmp_path, tracked, model):
    folder, _ = tracked
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    victim.write_text("keep")
    with output_folder(out, "track"):  # a folder of the tools', a link planted over one of its files
        write_text(out / "boxes.txt", "1,2,3,4\n")
    (out / "boxes.txt").unlink()
    (out / "boxes.txt").symlink_to(victim)
    with pytest.raises(ValueError, match="boxes.txt is a symbolic link"):
        track_video(FrameSource(folder / "clip.mp4"), np.array([120, 90, 40, 30.0]), STIFTracker(model), out,
                    progress=False)
    assert victim.read_text() == "keep" and sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "boxes.txt"]  # no track.json of a stopped run: nothing was tracked


def test_the_default_folder_is_named_by_the_video_or_the_folder_and_never_hidden(tmp_path, tracked, monkeypatch):
    folder, _ = tracked
    monkeypatch.setenv("STIF_OUTPUT", str(tmp_path))
    hidden = tmp_path / ".clip.v2.mp4"
    shutil.copyfile(folder / "clip.mp4", hidden)
    frames = tmp_path / "walk.v2"
    frames.mkdir()
    for i in (1, 2):
        cv2.imwrite(str(frames / f"{i:08d}.jpg"), np.zeros((30, 40, 3), np.uint8))
    monkeypatch.chdir(frames)
    runs = tmp_path / "runs" / "track"
    assert [default_folder(FrameSource(p)) for p in (hidden, frames, ".")] == [runs / "clip.v2", runs / "walk.v2",
                                                                                runs / "walk.v2"]


def test_a_box_is_four_numbers():
    np.testing.assert_array_equal(parse_box("1,2.5,30,40"), [1, 2.5, 30, 40])
    for text in ("1,2,3", "a,b,c,d", "1,2,3,4,5", "", "1_0,10,10,10"):  # float() would read 1_0 as 10
        with pytest.raises(ValueError, match="give four numbers x,y,w,h"):
            parse_box(text)


@pytest.mark.subprocess
def test_the_command_tracks_a_clip_and_refuses_what_it_cannot_use(tmp_path, tracked, monkeypatch):
    folder, _ = tracked
    done = cli("track", str(folder / "clip.mp4"), "--box", "120,90,40,30", "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    assert "tracked 30 frames" in done.stdout and "complete" in done.stdout
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    cases = [(["track", str(folder / "clip.mp4")], "no --box given and no display to draw it on"),
             (["track", str(folder / "clip.mp4"), "--box", "900,9,9,9"], "lies outside the 320x240 frame"),
             (["track", str(folder / "run" / "boxes.txt"), "--box", "1,1,9,9"], "is not a video file by its name"),
             (["track", str(folder / "clip.mp4"), "--box", "1,1,9,9", "--out", str(tmp_path / "mine")],
              "holds files this package did not write"),
             (["track", str(tmp_path / "run" / "track.mp4"), "--box", "120,90,40,30", "--out", str(tmp_path / "run")],
              "lies inside --out")]  # the last run's video as the input: never overwritten by this run's
    for args, message in cases:
        done = cli(*args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
    assert FrameSource(tmp_path / "run" / "track.mp4").announced == 30


def test_a_run_of_another_video_or_a_partial_folder_of_yours_is_refused_before_any_frame(tmp_path, tracked, model,
                                                                                           clip):
    """Two videos of one name share track's default folder: the second is refused, not tracked over the first's
    complete run, and so is the same video from another box or with another checkpoint; a ``partial/`` folder of
    the user's, where a stopped run would keep its frames, is refused too."""
    folder, _ = tracked
    shutil.copytree(folder / "run", tmp_path / "run")
    other = tmp_path / "elsewhere" / "clip.mp4"
    other.parent.mkdir()
    shutil.copyfile(folder / "clip.mp4", other)
    box = np.array([120.0, 90, 40, 30])
    with pytest.raises(ValueError, match="holds the run of another video"):
        track_video(FrameSource(other), box, STIFTracker(model), tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "boxes.txt").read_bytes()
    with pytest.raises(ValueError, match=r"holds a run of this video with another set-up \(first_box \["):
        track_video(FrameSource(folder / "clip.mp4"), box, STIFTracker(model), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match=r"another set-up \(checkpoint None, now 'elsewhere.safetensors'\)"):
        track_video(FrameSource(folder / "clip.mp4"), clip.boxes[0], STIFTracker(model), tmp_path / "run",
                    progress=False, describe={"checkpoint": "elsewhere.safetensors"})
    assert (tmp_path / "run" / "boxes.txt").read_bytes() == before
    (tmp_path / "run" / "partial").mkdir()
    (tmp_path / "run" / "partial" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="partial holds files this package did not write"):
        track_video(FrameSource(folder / "clip.mp4"), clip.boxes[0], STIFTracker(model), tmp_path / "run",
                    progress=False)
    assert sorted(p.name for p in (tmp_path / "run" / "partial").iterdir()) == ["keep.txt"]


def test_a_video_that_does_not_decode_back_makes_the_run_partial(tmp_path, tracked, model, monkeypatch):
    """A full disk or a file-size limit fails OpenCV's writes silently: track.mp4 is decoded back and counted
    before ``complete`` is decided (``ulimit -f`` had given an unreadable video and ``complete: true``)."""
    folder, _ = tracked
    monkeypatch.setattr(cv2, "VideoWriter", Lossy)
    with pytest.raises(OSError, match="track.mp4: 5 of the 30 frames written can be decoded back"):
        track_video(FrameSource(folder / "clip.mp4"), np.array([120.0, 90, 40, 30]), STIFTracker(model),
                    tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "track.json").read_text())
    assert summary["complete"] is False and "can be decoded back" in summary["stopped"]


def test_a_write_that_fails_midway_leaves_whole_rows_of_the_tracked_frames(tmp_path, tracked, model, monkeypatch):
    """A full disk or ``ulimit -f`` fails a write midway through a row: the kept boxes.txt and frames.csv hold
    whole rows, one per frame that track.json counts as tracked."""
    folder, _ = tracked
    real = track_module.frame_row

    def failing(index, *args):
        if index == 5:  # boxes.txt already holds this frame's row
            raise OSError(27, "File too large")
        return real(index, *args)

    monkeypatch.setattr(track_module, "frame_row", failing)
    with pytest.raises(OSError, match="File too large"):
        track_video(FrameSource(folder / "clip.mp4"), np.array([120.0, 90, 40, 30]), STIFTracker(model),
                    tmp_path, progress=False)
    assert json.loads((tmp_path / "track.json").read_text())["frames_tracked"] == 5
    assert (tmp_path / "boxes.txt").read_text().count("\n") == 5 and len(pd.read_csv(tmp_path / "frames.csv")) == 5
    cut = tmp_path / "cut.csv"
    cut.write_bytes(b"h\n1,2\n3,")  # a row cut by the failed write
    whole_rows(cut, 5)
    assert cut.read_bytes() == b"h\n1,2\n"


def test_a_huge_first_box_or_an_output_in_the_data_is_refused_before_any_file(tmp_path, tracked, model):
    """``--box`` follows ground truth's rule (over 4 times the frame: refused, not clipped), and ``--out`` is
    never in a data root: the default one, or the one above a sequence folder given as the video."""
    folder, _ = tracked
    with pytest.raises(ValueError, match=r"--box \[1.0, 1.0, 1000000000.0, 1000000000.0\] is over 4 times the 320x240"):
        track_video(FrameSource(folder / "clip.mp4"), np.array([1, 1, 1e9, 1e9]), STIFTracker(model), tmp_path / "o")
    clip = synthetic_clip(3, seed=1)
    sequence = tmp_path / "data" / "clip"  # a sequence folder: frames and ground truth
    sequence.mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(sequence / f"{i + 1:04d}.png"), clip.frame(i))
    (sequence / "groundtruth.txt").write_text("".join(",".join(map(str, b)) + "\n" for b in clip.boxes))
    for out in (sequence / "trk", tmp_path / "data" / "trk"):
        with pytest.raises(ValueError, match=f"--out {out} lies inside the data root {tmp_path / 'data'}"):
            track_video(FrameSource(sequence), clip.boxes[0], STIFTracker(model), out)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["clip"]
    assert "trk" not in {p.name for p in sequence.iterdir()}
