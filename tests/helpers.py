"""Helpers shared by test modules (fixtures live in conftest.py)."""
import os
import subprocess
import sys
from pathlib import Path

import cv2

import stif_core
from stif_core.paths import default_data_root


def cli(*args, cwd=None):
    """``python -m stif_core ARGS`` on the package under test, with the data root found here."""
    root = default_data_root()
    env = os.environ | ({"STIF_DATA_ROOT": str(root)} if root else {})
    env["PYTHONPATH"] = str(Path(stif_core.__file__).parent.parent)  # the stif_core under test
    return subprocess.run([sys.executable, "-m", "stif_core", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


class Lossy:
    """OpenCV's writer as a full disk leaves it: it takes every frame and reports nothing, and keeps only the first
    ``kept``."""

    kept = 5

    def __init__(self, *args):
        self.writer, self.n = REAL_WRITER(*args), 0

    def isOpened(self):
        return self.writer.isOpened()

    def write(self, frame):
        self.n += 1
        if self.n <= self.kept:
            self.writer.write(frame)

    def release(self):
        self.writer.release()


REAL_WRITER = cv2.VideoWriter
