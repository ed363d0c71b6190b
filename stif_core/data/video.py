"""Frames of a video file or a folder of images, read one at a time (a video of any length runs in flat memory),
and a sequence written as a video file.

Videos are decoded by OpenCV (``cv2.VideoCapture``; its wheels carry FFmpeg): the project already needs OpenCV
for its peer trackers, and it reads MP4, AVI, MOV, MKV and WebM. Each frame keeps the time stamp the decoder gives
it, so a variable frame rate is recorded as it is; frames are never dropped or repeated to even it out.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from ..files import WriteError, atomic, regular_file
from .sequences import FrameError, Sequence, frame_paths, read_image

FOLDER_FPS = 30.0  # the frame rate given to a folder of images, which has none
# containers taken as videos; FFmpeg would also "decode" other files (a text file renders as a video of its text)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv", ".3gp",
                  ".ts", ".mts")


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index from 0, its time stamp in seconds and its (H, W, 3) uint8 RGB pixels."""

    index: int
    time: float
    image: np.ndarray


class FrameSource:
    """A video file or a folder of images as a stream of ``Frame``; opening checks that a first frame decodes.
    ``announced``: the frame count the file's header gives (or None); ``stopped``: after iteration, why it stopped
    before ``announced`` (a broken or cut tail), else None."""

    def __init__(self, path: str | Path, fps: float = FOLDER_FPS):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"video {self.path} does not exist")
        self.stopped: str | None = None
        if self.path.is_dir():
            self.paths = frame_paths(self.path)  # FrameError when it holds no images
            self.fps, self.announced = fps, len(self.paths)
            first = read_image(self.paths[0])
        else:
            regular_file(self.path, "video")  # a FIFO would block the decoder
            if self.path.suffix.lower() not in VIDEO_SUFFIXES:
                raise FrameError(f"{self.path} is not a video file by its name (one of {', '.join(VIDEO_SUFFIXES)}) "
                                 "nor a folder of frames")
            self.paths = None
            capture = self.open_capture()
            self.fps = capture.get(cv2.CAP_PROP_FPS) or fps
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            self.announced = count if count > 0 else None
            ok, bgr = capture.read()
            capture.release()
            if not ok:
                raise FrameError(f"{self.path}: no frame could be decoded (an empty video, or not a video)")
            first = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        self.size = (first.shape[1], first.shape[0])  # (W, H)

    def open_capture(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise FrameError(f"OpenCV cannot open {self.path} as a video: not MP4, AVI, MOV, MKV or WebM, an MP4 cut "
                             "short (it loses its index), or too little memory to start its decoder (a line from "
                             "OpenCV above, 'Could not open codec', says so)")
        return capture

    def checked(self, frame: Frame) -> Frame:
        h, w = frame.image.shape[:2]
        if (w, h) != self.size:
            which = self.paths[frame.index].name if self.paths is not None else f"frame index {frame.index}"
            raise FrameError(f"{self.path}: {which} is {w}x{h} pixels, the first frame {self.size[0]}x"
                             f"{self.size[1]}; a video's frames must keep one size (boxes are in its pixels)")
        return frame

    def __iter__(self) -> Iterator[Frame]:
        self.stopped = None
        if self.paths is not None:
            for i, p in enumerate(self.paths):
                yield self.checked(Frame(i, i / self.fps, read_image(p)))
            return
        capture = self.open_capture()
        try:
            i = 0
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                time = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
                yield self.checked(Frame(i, time, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
                i += 1
        finally:
            capture.release()
        if self.announced is not None and i < self.announced:
            self.stopped = (f"{self.path}: decoding stopped after frame {i - 1} of the {self.announced} its header "
                            f"announces (a broken or cut tail); frames {i}-{self.announced - 1} were not read")
            warnings.warn(self.stopped, stacklevel=2)


def video_writer(path: str | Path, fps: float, size: tuple[int, int], name: Path | None = None) -> cv2.VideoWriter:
    """An MP4 writer (MPEG-4 part 2, ``mp4v``: OpenCV's wheels encode it at about 120 frames/s at 720p, where VP8
    WebM manages 9; it plays in VLC, mpv and QuickTime, not in a web browser) for frames of ``size`` (W, H);
    ``name``: the video's final path, for messages, when ``path`` is a temporary file."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise OSError(f"cannot write a video to {name or path}: OpenCV's MP4 writer refused {size[0]}x{size[1]} "
                      f"frames at {fps:g} frames/s")
    return writer


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float = 30.0, name: Path | None = None) -> int:
    """Write (H, W, 3) uint8 RGB frames of one size as an MP4 (``video_writer``); returns how many."""
    writer, n = None, 0
    try:
        for frame in frames:
            if writer is None:
                writer = video_writer(path, fps, (frame.shape[1], frame.shape[0]), name)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            n += 1
    finally:
        if writer is not None:
            writer.release()
    if n == 0:
        raise ValueError(f"no frame to write to {path}")
    check_video(path, n, name)
    return n


def check_video(path: str | Path, frames: int, name: Path | None = None) -> None:
    """``WriteError`` (an ``OSError``) naming the video (``name``: its final path) unless ``path`` decodes to
    ``frames`` frames: OpenCV's writer reports no failed write (a full disk, a file-size limit), and its video
    then has a cut or no index."""
    capture, decoded = cv2.VideoCapture(str(path)), 0
    try:
        while capture.isOpened() and decoded < frames + 1 and capture.grab():
            decoded += 1
    finally:
        capture.release()
    if decoded != frames:
        raise WriteError(f"cannot write {name or path}: {decoded} of the {frames} frames written can be decoded back "
                         "(a full disk or a file-size limit?); the earlier file, if any, is kept")


def sequence_video(seq: Sequence, path: str | Path, fps: float = 30.0, frames: int | None = None) -> Path:
    """A sequence (its first ``frames`` frames, all by default) written as an MP4, to try ``track`` on."""
    count = len(seq) if frames is None else min(frames, len(seq))
    with atomic(path) as tmp:  # a failed run leaves an earlier video at ``path`` as it was
        write_video((seq.frame(i) for i in range(count)), tmp, fps, Path(path))
    return Path(path)
