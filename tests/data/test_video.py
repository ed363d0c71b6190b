"""Frames streamed from a video file or a folder: decoded as written, and every bad input refused or stopped with a
message that names it."""
import warnings

import cv2
import numpy as np
import pytest
from helpers import Lossy
from PIL import Image

from stif_core.data import video
from stif_core.data.sequences import FrameError
from stif_core.data.synthetic import synthetic_clip
from stif_core.data.video import FrameSource, sequence_video, write_video


@pytest.fixture(scope="module")
def clip():
    return synthetic_clip(12, size=(96, 128), seed=3)


def test_a_written_video_reads_back_frame_by_frame(tmp_path, clip):
    path = sequence_video(clip, tmp_path / "clip.mp4", fps=25)
    source = FrameSource(path)
    frames = list(source)
    assert (source.size, source.fps, source.announced, source.stopped) == ((128, 96), 25.0, 12, None)
    assert [f.index for f in frames] == list(range(12))
    np.testing.assert_allclose([f.time for f in frames], np.arange(12) / 25, atol=1e-3)
    error = [np.abs(f.image.astype(int) - clip.frame(f.index)).mean() for f in frames]  # mp4v is lossy
    assert max(error) < 8, error


def test_a_folder_of_frames_streams_in_order_at_the_given_rate(tmp_path, clip):
    for i in range(5):
        Image.fromarray(clip.frame(i)).save(tmp_path / f"{i + 1:04d}.png")
    frames = list(FrameSource(tmp_path, fps=10))
    assert [f.time for f in frames] == [0, 0.1, 0.2, 0.3, 0.4]
    assert all(np.array_equal(f.image, clip.frame(f.index)) for f in frames)  # PNG: lossless


def test_what_is_not_a_video_is_refused(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(FrameError, match="OpenCV cannot open .*notes.mp4 as a video"):
        FrameSource(tmp_path / "notes.mp4")
    (tmp_path / "boxes.txt").write_text("1,2,3,4\n")  # FFmpeg would render it as a video of its text
    with pytest.raises(FrameError, match="boxes.txt is not a video file by its name"):
        FrameSource(tmp_path / "boxes.txt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FrameSource(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FrameError, match="holds no images"):
        FrameSource(tmp_path / "empty")


def test_a_video_without_frames_is_refused(tmp_path):
    writer = video.video_writer(tmp_path / "empty.avi", 25, (64, 48))
    writer.release()  # a container with no frame in it
    with pytest.raises(FrameError, match="(no frame could be decoded|OpenCV cannot open)"):
        FrameSource(tmp_path / "empty.avi")
    with pytest.raises(ValueError, match="no frame to write"):
        write_video([], tmp_path / "none.mp4")


def test_a_broken_tail_stops_at_the_last_good_frame_with_a_warning(tmp_path, clip):
    path = tmp_path / "clip.avi"  # AVI keeps its frame count in the header: a cut file announces more than it holds
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (128, 96))
    for i in range(12):
        writer.write(cv2.cvtColor(clip.frame(i), cv2.COLOR_RGB2BGR))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * 0.6)])
    source = FrameSource(path)
    with pytest.warns(UserWarning, match=r"decoding stopped after frame \d+ of the 12 its header announces"):
        n = sum(1 for _ in source)
    assert 0 < n < 12 and f"frames {n}-11 were not read" in source.stopped


def test_a_frame_of_another_size_stops_the_stream_naming_it(tmp_path, clip):
    for i in range(4):
        image = clip.frame(i) if i != 2 else clip.frame(i)[:80]
        Image.fromarray(image).save(tmp_path / f"{i:04d}.png")
    source = FrameSource(tmp_path)
    seen = []
    with pytest.raises(FrameError, match="0002.png is 128x80 pixels, the first frame 128x96"):
        for frame in source:
            seen.append(frame.index)
    assert seen == [0, 1]


class IrregularCapture:
    """A decoder stand-in whose frames come at uneven times (a variable frame rate)."""

    stamps = [0.0, 40.0, 50.0, 120.0, 125.0]

    def __init__(self, _path):
        self.i = -1

    def isOpened(self):  # noqa: N802 (OpenCV's name)
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: 25.0, cv2.CAP_PROP_FRAME_COUNT: 5.0}.get(prop, self.stamps[self.i])

    def read(self):
        self.i += 1
        return (True, np.zeros((8, 8, 3), np.uint8)) if self.i < len(self.stamps) else (False, None)

    def release(self):
        pass


def test_a_variable_frame_rate_keeps_each_frames_own_time(tmp_path, monkeypatch):
    (tmp_path / "vfr.mp4").write_bytes(b"")
    monkeypatch.setattr(video.cv2, "VideoCapture", IrregularCapture)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every announced frame read: no warning
        frames = list(FrameSource(tmp_path / "vfr.mp4"))
    assert [f.time for f in frames] == [0.0, 0.04, 0.05, 0.12, 0.125]  # none dropped, none repeated


def test_a_video_that_does_not_decode_back_is_an_error_and_the_earlier_one_stays(tmp_path, clip, monkeypatch):
    """OpenCV's writer reports no failed write (a full disk, a file-size limit): the video is decoded back and
    counted before it replaces an earlier one (``clip --replace`` had swapped a good video for one of 0 frames)."""
    path = sequence_video(clip, tmp_path / "clip.mp4")
    before = path.read_bytes()
    monkeypatch.setattr(cv2, "VideoWriter", Lossy)
    with pytest.raises(OSError, match=rf"cannot write {path}: 5 of the 12 frames written can be decoded back"):
        sequence_video(clip, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
