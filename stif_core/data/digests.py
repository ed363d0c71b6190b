"""Digests of frame files by content (BLAKE2b over each file's bytes), so that a result is reused only for the
same pixels, not for other frames of the same names and sizes. A cache keyed by the file's path, size,
modification time, inode and change time (which no program can set back, as it can the modification time) spares
a re-run from reading unchanged frames again."""
from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from ..files import write_text

CHUNK = 1 << 20  # bytes read at a time


def file_digest(path: Path) -> str:
    """BLAKE2b (16 bytes, hex) of a file's bytes."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


class FrameDigests:
    """``digests(path)``: a frame file's content digest ("-" for a missing file), from the cache at ``store``
    (a JSON file; None: in memory only) while the file's size, modification time and inode are unchanged."""

    def __init__(self, store: Path | None = None):
        self.store, self.entries, self.changed = store, {}, False
        if store is not None and Path(store).is_file():
            try:
                entries = json.loads(Path(store).read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError):
                entries = None  # unreadable: rebuilt from the frames, which are the truth
            self.entries = entries if isinstance(entries, dict) else {}

    def __call__(self, path: str | Path) -> str:
        path = Path(path)
        try:
            st = os.stat(path)
        except OSError:
            return "-"
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block a reader: refused by name when the frame is read
            return "-"
        key, stamp = os.path.realpath(path), [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
        entry = self.entries.get(key)
        if isinstance(entry, list) and entry[:4] == stamp and len(entry) == 5:
            return entry[4]
        value = file_digest(path)
        self.entries[key] = [*stamp, value]
        self.changed = True
        return value

    def save(self) -> None:
        """Write the cache (when a digest was added) to ``store``."""
        if self.store is not None and self.changed:
            write_text(self.store, json.dumps(self.entries))
            self.changed = False
