"""Files the tools write, read and delete: atomic text writes, JSON read with its path in every error, names that
become paths checked as names, output locations checked before any work, and folders replaced only when a tool
of this package made them (they hold ``OWNED_MARK``)."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

OWNED_MARK = ".made-by-stif_core"  # in every folder a tool may delete and make anew
BAD_NAME_CHARS = re.compile(r"[/\\\x00-\x1f]")


def write_text(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename: a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one per process; the umask's permissions
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: str | Path, what: str = "file"):
    """The JSON value of ``path``; ``FileNotFoundError`` or ``ValueError`` naming the path (and ``what`` it is)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{what} {path} is not valid JSON ({err})") from None


def check_name(value: str, what: str) -> str:
    """``value`` when it can name a single file or folder: not empty, not ``.`` or ``..``, no path separator and
    no control character. A name checked here can never reach outside the folder it is joined to."""
    if not isinstance(value, str) or not value.strip() or value in (".", "..") or BAD_NAME_CHARS.search(value):
        raise ValueError(f"{what} {value!r} is not a valid name: it becomes a folder or file name, so it must be "
                         "non-empty, not '.' or '..', and hold no '/', '\\' or control character")
    return value


def writable_dir(path: str | Path, what: str = "--out") -> Path:
    """``path`` resolved and created, checked before any work: ``ValueError`` when it is a file or cannot be
    written to."""
    path = Path(path).resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{what} {path} cannot be created ({err.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {path} is not writable")
    return path


def owned_dir(path: str | Path, what: str, made_by: str) -> Path:
    """``writable_dir`` for a tool that overwrites files by name in it: accepted when empty, new, marked as made by
    a tool (``OWNED_MARK``) or holding ``made_by`` (the file that tool writes there, e.g. an earlier run's
    ``metrics.json``), and then marked; a folder of other files is refused, so that none of them is overwritten."""
    path = writable_dir(path, what)
    if not (path / OWNED_MARK).is_file() and not (path / made_by).exists() and any(path.iterdir()):
        raise ValueError(f"{what} {path} holds files this tool did not write (no {made_by} nor {OWNED_MARK}); "
                         "it writes files by name there and never overwrites yours: choose a new or empty folder")
    (path / OWNED_MARK).touch()
    return path


def writable_file(path: str | Path, what: str) -> Path:
    """``path`` resolved, checked before any work: ``ValueError`` when it is a folder or its folder cannot be
    written to."""
    path = Path(path).resolve()
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give a file name")
    writable_dir(path.parent, f"the folder of {what}")
    return path


def fresh_folder(path: Path) -> Path:
    """An empty folder at ``path`` that a tool owns: a folder already there is deleted only when it holds
    ``OWNED_MARK`` (a tool made it); any other existing path is refused, so nothing the user made is lost."""
    path = Path(path)
    if path.is_dir() and (path / OWNED_MARK).is_file():
        shutil.rmtree(path)
    elif path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"{path} exists and was not made by this tool; it is never deleted: choose another output "
                         "folder, or move it away yourself")
    path.mkdir(parents=True, exist_ok=True)
    (path / OWNED_MARK).touch()
    return path
