"""Command line: ``python -m stif_core COMMAND``, each command a module of ``stif_core.commands`` (``COMMANDS``:
demo, train, cache, crossval, sweep, eval, compare, bench, report, health, references, track, clip, book)."""
from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings

MAP_FAILED = ("failed to map segment", "cannot allocate memory")  # the loader's words for a library it has no room for
OUT_OF_MEMORY = ("can't allocate memory", "could not allocate", "out of memory", "could not create a primitive")


def out_of_memory(err: RuntimeError) -> bool:
    """Whether a library's ``RuntimeError`` is an allocation that failed: PyTorch's allocator, the ONNX export's
    bytes, oneDNN's primitives (which fail to build when they get no memory)."""
    return any(words in str(err).lower() for words in OUT_OF_MEMORY)


def main(argv: list[str] | None = None) -> int:
    """Parse and run one command. A user-facing error (bad input, a file or folder that cannot be used) prints one
    line and exits with 2, an interruption (Ctrl-C) one line saying what was kept and exits with 130, a command
    that did less than asked (a video decoded only in part) exits with the status it returns;
    ``--verbose`` shows the traceback too."""
    try:  # PyTorch takes seconds to import: Ctrl-C meanwhile is an interruption too
        from .commands import COMMANDS, interruptible
        from .tracking.protocol import TrackerFailure
    except KeyboardInterrupt:
        print("interrupted while starting; nothing was written", file=sys.stderr)
        return 130
    except (MemoryError, ImportError, OSError) as err:  # a tight ulimit -v: PyTorch alone needs several hundred MB
        memory = isinstance(err, MemoryError) or any(words in str(err).lower() for words in MAP_FAILED)
        why = "too little memory to start (importing PyTorch and OpenCV)" if memory else \
            f"a library cannot be loaded ({err}); reinstall with pip install ."
        print(f"error: {why}; nothing was written", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m stif_core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, *_, **__: f"warning: {message}\n"  # a line, not a source excerpt
    try:
        status = interruptible(args.run)(args)
    except KeyboardInterrupt:
        if args.verbose:
            traceback.print_exc()
        kept = next(c.RESUME for c in COMMANDS if c.run is args.run)
        print(f"interrupted: {args.command} stopped; {kept}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of the output stopped (``| head``): no error, the shell's status for it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit fails no more
        kept = next(c.RESUME for c in COMMANDS if c.run is args.run)
        print(f"{args.command} stopped: the program reading its output closed it; {kept}", file=sys.stderr)
        return 141
    except (ValueError, OSError, TrackerFailure, FloatingPointError) as err:  # bad input, unusable files: one line
        if args.verbose:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as err:  # e.g. under a tight ulimit -v: Python's, PyTorch's or oneDNN's
        if not (isinstance(err, MemoryError) or out_of_memory(err)):
            raise
        if args.verbose:
            traceback.print_exc()
        print(f"error: {args.command} ran out of memory; {next(c.RESUME for c in COMMANDS if c.run is args.run)}",
              file=sys.stderr)
        return 2
    return status or 0  # a command that finished with less than asked (track's PARTIAL video) returns 1


if __name__ == "__main__":
    sys.exit(main())
