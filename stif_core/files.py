"""Files the tools write, read and delete, under one ownership rule:

- a command writes into an output folder it holds (``output_folder``): one run at a time (a lock naming its holder),
  in a folder that is new, empty, or holds a manifest (``MANIFEST``) of the files the tools wrote there;
- every write goes to a temporary file beside its target, then a rename; it never follows a symbolic link, never
  leaves the folder it was given, and never replaces a file the manifest does not list (one of the user's);
- a folder is emptied or replaced only when every file in it is accounted for by a manifest (``unaccounted``), and
  a command that replaces a whole output (``replace_folder``) builds the new one beside it and swaps it in only
  when the build succeeded.

Also here: JSON read with its path in every error, names that become paths checked as names, and output
locations checked before any work."""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import sys
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from filelock import FileLock, Timeout

from .paths import default_data_root

MANIFEST = ".stif_core-files.json"  # {"files": {relative path: command}}: what the tools wrote in a folder
# What a process that does not hold the folder (a notebook's kernel under ``report``) wrote there, one per process:
FRAGMENT = re.compile(r"^\.stif_core-files\.\d+\.json$")
LOCK = ".stif_core.lock"  # held by the run writing into a folder; its holder described in LOCK + ".json"
# A write or swap under way (or cut short) by a pid: ``temporary_name``'s, marked so that no user's file matches.
TEMPORARY = re.compile(r"^\..+\.stif-(\d+)\.(tmp|new|old)(\.[^.]+)?$")
BOOKKEEPING = (MANIFEST, LOCK, LOCK + ".json")
SIDE_LOCK = ".stif-lock"  # ``.<name>.stif-lock`` beside a folder built whole (``replace_folder``)
BAD_NAME_CHARS = re.compile(r"[/\\\x00-\x1f]")
NO_ROOM = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # a full disk, a file-size limit (ulimit -f), a quota
EXAMPLES = 3  # paths named in a refusal (a folder is walked only until it finds them)
MAX_JSON_BYTES = 64 * 2**20  # a JSON file read whole (configs, records, metadata): far above any this tool writes


@dataclass
class Output:
    """An output folder held by this process: its root (resolved), the command writing there and the manifest."""

    root: Path
    command: str
    files: dict[str, str] = field(default_factory=dict)
    depth: int = 0


ACTIVE: dict[Path, Output] = {}  # the output folders this process holds, by root


def bookkeeping(name: str) -> bool:
    """A file of this module's own (manifest, fragment, lock, a temporary file of some write)."""
    return (name in BOOKKEEPING or bool(FRAGMENT.match(name) or TEMPORARY.match(name))
            or (name.startswith(".") and name.endswith((SIDE_LOCK, SIDE_LOCK + ".json"))))


def manifests(folder: Path) -> list[Path]:
    """The manifest of ``folder`` and the fragments of processes that wrote there without holding it."""
    folder = Path(folder)
    found = [folder / MANIFEST] if (folder / MANIFEST).is_file() else []
    if folder.is_dir():
        found += sorted(p for p in folder.iterdir() if FRAGMENT.match(p.name))
    return [p for p in found if p.is_file() and not p.is_symlink()]


def read_manifest(folder: Path) -> dict[str, str] | None:
    """The files the tools wrote in ``folder`` (relative path -> command), None when it has no manifest."""
    paths = manifests(folder)
    if not paths:
        return None
    files = {}
    for path in paths:
        listed = read_json(path, "output manifest")
        if not isinstance(listed, dict) or not isinstance(listed.get("files"), dict):
            raise ValueError(f"output manifest {path} has no object 'files'; it was not written by this tool")
        files |= listed["files"]
    return files


def save_manifest(folder: Path, files: dict[str, str], name: str = MANIFEST, owner: str | None = None) -> None:
    """The manifest ``name`` of ``folder``: the files the tools wrote there and (``owner``) the command whose
    output the folder is."""
    record = ({"command": owner} if owner else {}) | {"files": dict(sorted(files.items()))}
    swap_in(Path(folder) / name, json.dumps(record, indent=1))


def manifest_owner(folder: Path) -> str | None:
    """The command whose output ``folder`` is (its manifest's ``command``); None when none is recorded."""
    path = Path(folder) / MANIFEST
    if not path.is_file() or path.is_symlink():
        return None
    record = read_json(path, "output manifest")
    owner = record.get("command") if isinstance(record, dict) else None
    return owner if isinstance(owner, str) else None


def swap_in(path: Path, text: str) -> None:
    """``text`` written to a new temporary file beside ``path`` (``exclusive``), then renamed over it."""
    tmp = exclusive(temporary_name(path))
    try:
        with writing(path):
            tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:  # a failed write or rename leaves no temporary file behind
        tmp.unlink(missing_ok=True)
        raise


class WriteError(OSError):
    """A write that failed, named by its target (not the temporary file it went to) and why."""


@contextmanager
def writing(path: Path | str, kept: str = "the earlier file, if any, is kept"):
    """An ``OSError`` of the block that names no file (a full disk or a file-size limit met by a writer) becomes a
    ``WriteError`` naming ``path``, the file being written (and, for no room, what is ``kept``)."""
    try:
        yield
    except WriteError:
        raise
    except OSError as err:
        if err.filename is not None and err.errno not in NO_ROOM:
            raise
        why = f"{err.strerror or err}" + (f"; {kept}" if err.errno in NO_ROOM else "")
        error = WriteError(f"cannot write {path}: {why}")
        error.errno = err.errno
        raise error from None


FRAGMENTS: dict[Path, dict[str, str]] = {}  # this process's fragments, by folder


def note_written(path: Path) -> None:
    """List ``path``, written by a process that holds no output folder around it, in this process's fragment of
    the nearest folder above that has a manifest (a run's folder that a kernel writes figures into)."""
    folder = next((p for p in path.parents if (p / MANIFEST).is_file()), None)
    if folder is None:
        return
    files = FRAGMENTS.setdefault(folder, {})
    rel = str(path.relative_to(folder))
    if rel not in files:
        files[rel] = Path(sys.argv[0]).name or "python"
        save_manifest(folder, files, f".stif_core-files.{os.getpid()}.json")


def temporary_name(path: Path, kind: str = "tmp", suffix: str = "") -> Path:
    """This process's temporary file beside ``path``: ``.<name>.stif-<pid>.<kind><suffix>`` (``TEMPORARY``)."""
    return path.with_name(f".{path.name if not suffix else path.stem}.stif-{os.getpid()}.{kind}{suffix}")


def exclusive(path: Path) -> Path:
    """``path`` created as a new empty regular file (never through a link: one planted there is an error)."""
    if os.path.lexists(path) and TEMPORARY.match(path.name):
        os.unlink(path)  # this pid's own leftover of an interrupted write
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666))
    return path


def holder_of(path: Path) -> Output | None:
    """The output folder this process holds that contains ``path`` (the innermost), if any."""
    inside = [o for o in ACTIVE.values() if o.root == path or o.root in path.parents]
    return max(inside, key=lambda o: len(o.root.parts), default=None)


def make_parents(root: Path, path: Path) -> None:
    """The folders from ``root`` down to ``path``'s, created where missing; ``ValueError`` for a link on the way."""
    for part in (*reversed(path.parent.relative_to(root).parents), path.parent.relative_to(root)):
        folder = root / part
        if folder.is_symlink():
            raise ValueError(f"{folder} is a symbolic link; outputs are never written through a link")
        if not folder.exists():
            folder.mkdir()
        elif not folder.is_dir():
            raise ValueError(f"{folder} is a file, not a folder")


def listed_below(root: Path, path: Path) -> bool:
    """Whether the manifest of a folder between ``root`` and ``path`` lists ``path`` (a file a process wrote in a
    subfolder of a held folder: a notebook kernel's record in its configuration's folder)."""
    for folder in path.parents:
        if folder == root:
            return False
        if str(path.relative_to(folder)) in (read_manifest(folder) or {}):
            return True
    return False


def checked_target(path: str | Path) -> Path:
    """``path`` (absolute) where a write may land: never a link, nor a file of the user's. Inside an output folder
    held by this process: every folder on the way from its root is a real folder, an existing file must be one
    the manifest lists, and the file is listed there before it is written. Elsewhere: the folder is created and
    an existing link refused."""
    path = Path(os.path.abspath(path))
    out = holder_of(path)
    if out is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        note_written(path)
    else:
        make_parents(out.root, path)
    if path.is_symlink():
        raise ValueError(f"{path} is a symbolic link; outputs are never written through a link")
    if os.path.lexists(path) and not path.is_file():
        raise ValueError(f"{path} exists and is not a regular file; it is never replaced")
    if out is not None:
        rel = str(path.relative_to(out.root))
        if rel not in out.files:
            if path.exists() and not listed_below(out.root, path):
                raise ValueError(f"{path} exists and was not written by this tool (it is not in {out.root / MANIFEST});"
                                 " it is never overwritten: choose another output folder, or move it away yourself")
            out.files[rel] = out.command
            save_manifest(out.root, out.files, owner=out.command)
    return path


@contextmanager
def atomic(path: str | Path, on_error: Path | None = None):
    """A temporary file beside ``path`` (``checked_target``) for a writer to fill; renamed over ``path`` when the
    block ends, else deleted, or renamed to ``on_error``."""
    path = checked_target(path)
    try:
        tmp = exclusive(temporary_name(path, suffix=path.suffix))  # the suffix kept for writers
    except OSError as err:  # named by its target: the temporary name means nothing to the user
        raise OSError(f"cannot write {path}: {err.strerror or err}") from None
    try:
        with writing(path):
            yield tmp
    except BaseException:
        if on_error is None:
            tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, checked_target(on_error))
        raise
    os.replace(tmp, path)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` atomically (``atomic``): a reader never sees a half-written file."""
    with atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic(path) as tmp:
        tmp.write_bytes(data)


def open_append(path: str | Path):
    """``path`` opened to append text (a log that grows as a run goes on), never through a link."""
    path = checked_target(path)  # opened by name, so that a failed write names it (``f.name``)
    return open(path, "a", encoding="utf-8", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW, 0o666))


def discard(path: str | Path) -> None:
    """Delete a file a tool wrote (listed in its folder's manifest); any other path is left alone."""
    path = checked_target(path)
    path.unlink(missing_ok=True)


def unaccounted(folder: Path, commands: tuple[str, ...] | None = None, limit: int | None = None) -> list[str]:
    """Everything under ``folder`` that no manifest (of its folder or one above, by one of ``commands`` when given)
    lists, links, other non-files, unreadable entries and empty folders included (an empty folder may be a user's;
    one a tool left after a failed write is then removed by hand, never the other way round); bookkeeping and
    temporary files count as accounted. ``limit``: stop at that many (a large folder is not walked whole)."""
    folder = Path(folder)
    listed = cache(read_manifest)  # each folder's manifest, read once
    found: list[str] = []
    walk = os.walk(folder, onerror=lambda err: found.append(f"{os.path.relpath(err.filename, folder)} (unreadable)"))
    for root, dirs, names in walk:  # links to folders are listed, not followed
        dirs.sort()
        for name in sorted(dirs + names):
            path = Path(root, name)
            rel = str(path.relative_to(folder))
            try:
                if path.is_symlink() or not (path.is_file() or path.is_dir()):
                    found.append(rel)
                elif path.is_dir() and not any(p.is_file() or p.is_symlink() for p in path.rglob("*")):
                    found.append(rel + "/")
                elif path.is_file() and not bookkeeping(name):
                    owner = next((p for p in path.parents if p != folder and folder in p.parents
                                  and listed(p) is not None), folder)  # the innermost folder with a manifest
                    key = str(path.relative_to(owner))
                    files = listed(owner) or {}
                    if key not in files or (commands is not None and files[key] not in commands):
                        found.append(rel)
            except OSError:  # a path that cannot even be looked at is not the tools'
                found.append(f"{rel} (unreadable)")
            if limit is not None and len(found) >= limit:
                return found[:limit]
    return found


@contextmanager
def lock_held(lock: Path, label: str, command: str):
    """Hold ``lock`` for the block; ``ValueError`` naming the other run when another process holds it. A holder
    record left by a run that died is taken over, with a line saying so."""
    record = lock.with_name(lock.name + ".json")
    for path in (lock, record):
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise ValueError(f"{label}: {path} is a link or not a file, so not a lock of this package's; remove it "
                             "if no run of this package is using the folder")
    guard = FileLock(str(lock), timeout=0)
    try:
        guard.acquire()
    except Timeout:
        other = read_holder(record)
        raise ValueError(f"{label} is in use by another run ({other}); wait for it to end, or choose another "
                         "folder") from None
    try:
        if os.path.lexists(record):
            print(f"{label}: taking over the lock of a run that is no longer running ({read_holder(record)})",
                  file=sys.stderr, flush=True)
        holder = {"pid": os.getpid(), "command": command, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "argv": sys.argv}
        swap_in(record, json.dumps(holder))
        yield
    finally:
        if record.is_file() and json_object(record).get("pid") == os.getpid():
            record.unlink()
        guard.release()


def json_object(path: Path) -> dict:
    """The JSON object in ``path``; ``{}`` when there is no readable one (a record that may be absent or cut)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def read_holder(record: Path) -> str:
    holder = json_object(record)
    if "pid" not in holder:
        return "holder unknown"
    return f"pid {holder['pid']}, {holder.get('command', '?')}, started {holder.get('started', '?')}"


def owned_dir(path: str | Path, what: str = "--out") -> Path:
    """``writable_dir`` for a tool that writes files into it: accepted when new, empty or holding a manifest (a
    tool wrote there before); a folder of other files is refused, so that none of them is touched."""
    given = Path(path)
    if given.is_symlink() and not given.exists():
        raise ValueError(f"{what} {given} is a broken symbolic link")
    inside = Path(os.path.abspath(given))
    for root in [r for r in ACTIVE if r in inside.parents]:  # a folder inside one this process holds
        parts = inside.relative_to(root).parts
        link = next((step for step in (root.joinpath(*parts[:i + 1]) for i in range(len(parts)))
                     if step.is_symlink()), None)
        if link is not None:
            raise ValueError(f"{what} {inside} passes through the link {link} inside the output folder {root}: "
                             "links there are never followed")
    path = writable_dir(path, what)
    # a folder of the tools' own subfolders passes (a run stopped before it wrote a file of its own); a link at a
    # lock's name is left to the lock's own check
    if read_manifest(path) is None and set(unaccounted(path, limit=len(BOOKKEEPING) + 1)) - set(BOOKKEEPING):
        raise ValueError(f"{what} {path} holds files this package did not write (it has no {MANIFEST}); its tools "
                         "write only into folders they made (and never over a file you put there): choose a new or "
                         "empty folder")
    return path


@contextmanager
def output_folder(path: str | Path, command: str, what: str = "--out"):
    """Hold the output folder ``path`` for the block (``owned_dir``, then its lock; re-entered freely by this
    process); yields the resolved folder. A folder is the output of one command (its manifest records which):
    another command's is refused. A folder it made that holds nothing at the end (a refused run) is removed."""
    made = not os.path.lexists(path)
    root = owned_dir(path, what)
    if root in ACTIVE:
        ACTIVE[root].depth += 1
        try:
            yield root
        finally:
            ACTIVE[root].depth -= 1
        return
    try:
        with lock_held(root / LOCK, f"{what} {root}", command):
            remove_leftovers(root)
            files, owner = read_manifest(root) or {}, manifest_owner(root)
            if files and owner not in (None, command):  # one command's files never among another's
                raise ValueError(f"{what} {root} holds the output of another command ({owner}, e.g. "
                                 f"{sorted(files)[0]}); each command writes into a folder of its own: choose another "
                                 "folder")
            ACTIVE[root] = Output(root, command, tidy(root, command))  # a new folder marked
            try:
                yield root
            finally:
                with suppress(OSError):  # a manifest that cannot be rewritten now is merged at the next hold
                    tidy(root, ACTIVE.pop(root).command)
    finally:
        if made and set(os.listdir(root)) <= {LOCK, MANIFEST} and not read_manifest(root):
            for name in (MANIFEST, LOCK):
                (root / name).unlink(missing_ok=True)
            with suppress(OSError):  # another run took the folder meanwhile
                root.rmdir()


def tidy(root: Path, command: str) -> dict[str, str]:
    """At the start and the end of a hold: the kernels' fragments merged into ``root``'s manifest (saved, its owner
    ``command`` where none is recorded), and the files it lists that were never written (a run that failed first)
    dropped, with the folders made for them left empty; returns the files listed."""
    files = read_manifest(root) or {}
    gone = [rel for rel in files if not os.path.lexists(root / rel)]
    for rel in gone:
        del files[rel]
    save_manifest(root, files, owner=manifest_owner(root) or command)
    for fragment in manifests(root)[1:]:
        fragment.unlink()
    for rel in gone:
        for folder in (root / rel).parents:
            if folder == root:
                break
            with suppress(OSError):  # not empty: kept
                folder.rmdir()
    return files


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # none, or a number no process can have
        return False
    except PermissionError:  # another user's
        return True
    return True


def remove_leftovers(root: Path) -> None:
    """Delete the temporary files (``TEMPORARY``) under ``root`` that processes no longer running left (a kill
    during a write); the caller holds ``root``'s lock, so no run of this package is writing them."""
    for folder, _, names in os.walk(root):  # links to folders are not followed
        for name in names:
            found = TEMPORARY.match(name)
            path = Path(folder, name)
            if found and path.is_file() and not path.is_symlink() and not alive(int(found[1])):
                path.unlink(missing_ok=True)


def check_replaceable(target: Path, commands: tuple[str, ...] | None, what: str) -> None:
    """``ValueError`` unless ``target`` is absent or a folder whose every file the tools wrote (by ``commands``)."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ValueError(f"{what} {target} exists and is not a folder this tool made; it is never deleted: choose "
                         "another output folder, or move it away yourself")
    if target.is_dir():
        items = unaccounted(target, commands, limit=EXAMPLES)
        if items:
            who = f"that {'/'.join(commands)} did not write" if commands else "no tool of this package wrote"
            count = f"{len(items)}" if len(items) < EXAMPLES else f"{EXAMPLES} or more"
            raise ValueError(f"{what} {target} holds {count} path(s) {who}, e.g. {', '.join(items)}; it is never "
                             "emptied: choose another output folder, or move it away yourself")


def fresh_folder(path: str | Path, commands: tuple[str, ...] | None = None, what: str = "folder") -> Path:
    """An empty folder at ``path`` that the tools own (an empty manifest): a folder already there is emptied only
    when every file in it was written by a tool (by ``commands`` when given); anything else is refused."""
    path = Path(os.path.abspath(path))
    check_replaceable(path, commands, what)
    if path.is_dir():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    save_manifest(path, {})
    return path


def replace_folder(target: str | Path, command: str, build, what: str = "--out") -> Path:
    """Build a whole output anew: ``build(folder)`` fills a new folder beside ``target``, which replaces
    ``target`` only when the build succeeded (a failed build keeps the previous output). ``target`` must be
    absent, empty, or made by ``command`` whole; one run at a time (a lock beside it)."""
    target = Path(os.path.abspath(target))
    check_replaceable(target, (command,), what)
    writable_dir(target.parent, f"the folder of {what}")
    with lock_held(target.parent / f".{target.name}{SIDE_LOCK}", f"{what} {target}", command):
        new, old = temporary_name(target, "new"), temporary_name(target, "old")
        for leftover in (new, old):  # this pid's own, from a run cut short
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
        new.mkdir()
        try:
            build(new)
            save_manifest(new, {str(p.relative_to(new)): command for p in new.rglob("*")
                                if p.is_file() and not p.is_symlink()}, owner=command)
        except BaseException:
            shutil.rmtree(new)
            raise
        check_replaceable(target, (command,), what)  # still ours after the build
        if target.exists():
            os.rename(target, old)
        os.rename(new, target)
        if old.exists():
            shutil.rmtree(old)
    return target


def regular_file(path: str | Path, what: str = "file") -> Path:
    """``path`` when it is a regular file, checked before anything opens it: a FIFO would block its reader."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a special file")
        raise ValueError(f"{what} {path} is {kind}, not a regular file")
    return path


BYTE_ORDER_MARKS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of the regular file ``path``, line ends made ``\\n``: UTF-8 with or without a byte-order mark, or
    UTF-16 (LE or BE) with one, as annotation files are found saved; other bytes and a NUL are a ``ValueError``."""
    data = regular_file(path, what).read_bytes()
    bom, codec = next(((m, c) for m, c in BYTE_ORDER_MARKS if data.startswith(m)), (b"", "utf-8"))
    try:
        text = data[len(bom):].decode(codec)
    except UnicodeDecodeError as err:
        bad = (err.start, err.end)
    else:
        nul = text.find("\x00")
        bad = None if nul < 0 else (len(text[:nul].encode(codec)), len(text[:nul + 1].encode(codec)))
    if bad is not None:
        start, end = bad[0] + len(bom), bad[1] + len(bom)
        seen = " ".join(f"0x{b:02x}" for b in data[start:end])
        raise ValueError(f"{what} {path} is not UTF-8 or UTF-16 text: byte{'s' if end - start > 1 else ''} {seen} "
                         f"at offset {start}; save it as UTF-8")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_json(path: str | Path, what: str = "file", limit: int = MAX_JSON_BYTES):
    """The JSON value of ``path`` (read by ``read_text``; a file over ``limit`` bytes is refused unread); errors
    name the path and ``what`` it is."""
    size = regular_file(path, what).stat().st_size
    if size > limit:
        raise ValueError(f"{what} {path} is {size / 2**20:,.0f} MiB, over the {limit / 2**20:,.0f} MiB this tool "
                         "reads: it is not one this tool wrote or reads; give the right file")
    return parse_json(read_text(path, what), f"{what} {path}", lambda pairs: unique_keys(pairs, path, what))


def parse_json(text: str, label: str, hook=None):
    """``json.loads`` of ``text`` with a one-line ``ValueError`` starting with ``label`` (what and where the text
    is) for invalid JSON and for values nested too deeply for the parser (Python's recursion limit)."""
    try:
        return json.loads(text, object_pairs_hook=hook)
    except json.JSONDecodeError as err:
        raise ValueError(f"{label} is not valid JSON ({err})") from None
    except RecursionError:
        raise ValueError(f"{label} holds JSON nested too deeply to read (over about {sys.getrecursionlimit()} "
                         "levels of lists or objects): it is not one this tool wrote") from None


def unique_keys(pairs: list[tuple], path, what: str) -> dict:
    """A JSON object's pairs as a dict; ``ValueError`` for a key given twice (JSON readers keep the last silently)."""
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"{what} {path} gives the key(s) {twice} more than once; give each once")
    return dict(pairs)


def outside_data(path: str | Path, root: str | Path | None, what: str) -> Path:
    """``path`` (resolved) when it lies outside the data root ``root`` and outside the default one (a run on a copy
    of the data never writes into the original either)."""
    if not str(path).strip():
        raise ValueError(f"{what} is empty: name an output folder")
    path = Path(path).resolve()
    for data, kind in data_folders(root, default_data_root()).items():
        if path == data or data in path.parents:
            raise ValueError(f"{what} {path} lies inside the {kind} {data}; results are never written there")
    return path


def data_folders(*roots: str | Path | None) -> dict[Path, str]:
    """The data roots (resolved), and where the sequence folders they link to really are."""
    found = {}
    for root in {Path(r).resolve() for r in roots if r is not None}:
        if root.is_dir():
            found |= {entry.resolve(): "sequence folder linked from a data root" for entry in root.iterdir()
                      if entry.is_symlink() and entry.is_dir()}
        found[root] = "data root"
    return found


def check_name(value: str, what: str) -> str:
    """``value`` when it can name a single file or folder (never reaching outside the folder it is joined to)."""
    if not isinstance(value, str) or not value.strip() or value in (".", "..") or BAD_NAME_CHARS.search(value):
        raise ValueError(f"{what} {value!r} is not a valid name: it becomes a folder or file name, so it must be "
                         "non-empty, not '.' or '..', and hold no '/', '\\' or control character")
    return value


def writable_dir(path: str | Path, what: str = "--out") -> Path:
    """``path`` resolved and created, checked before any work (a file, or a folder that cannot be written to)."""
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


def writable_file(path: str | Path, what: str) -> Path:
    """``path`` made absolute (its folder resolved, a link at the file refused), checked before any work."""
    path = Path(path)
    path = writable_dir(path.parent, f"the folder of {what}") / path.name
    if path.is_symlink():
        raise ValueError(f"{what} {path} is a symbolic link; outputs are never written through a link")
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give a file name")
    return path
