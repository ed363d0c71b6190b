"""The command line's commands, one module each: ``register(subparsers)`` adds the command's parser (its ``run``
as the default), ``run(args)`` does the work with its heavy imports inside, and ``RESUME`` says what an
interrupted run keeps and how to go on. ``python -m stif_core`` (``stif_core/__main__.py``) dispatches."""
from __future__ import annotations

import os

from . import (
    bench,
    book,
    cache,
    clip,
    compare,
    crossval,
    demo,
    evaluate,
    health,
    references,
    report,
    sweep,
    track,
    train,
)

COMMANDS = (demo, train, cache, crossval, sweep, evaluate, compare, bench, report, health, references, track, clip,
            book)


def interruptible(run):
    """``run`` with SIGTERM an interruption as Ctrl-C is (``KeyboardInterrupt`` carrying the signal's name: the
    command keeps what it did and ``interrupted: ...`` is printed), and with a second Ctrl-C or SIGTERM while it
    stops one line, not a traceback from whatever code it lands in (a clean-up, an ``atexit`` callback): it is
    ignored, the stop goes on. A signal the process started ignoring stays ignored, as a background job of a script
    ignores SIGINT from its start."""
    import functools
    import signal
    import sys
    import threading

    def stop(signum, frame):
        if stopping:
            print(f"stif_core: already stopping (signal {signum} ignored); kill -9 {os.getpid()} ends it at once",
                  file=sys.stderr, flush=True)
            return
        stopping.append(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    @functools.wraps(run)
    def wrapped(args):
        if threading.current_thread() is not threading.main_thread():
            return run(args)
        stopping.clear()
        # a SIGINT the process was started ignoring (a background job of a script, nohup) stays ignored
        caught = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not signal.SIG_IGN]
        before = {s: signal.signal(s, stop) for s in caught}
        interrupted = False
        try:
            return run(args)
        except KeyboardInterrupt:
            interrupted = stopping.append(signal.SIGINT) or True  # a Ctrl-C of Python's own counts too
            raise
        finally:  # the command line keeps the quiet handler for the interpreter's exit; a caller gets its own back
            spec = getattr(sys.modules.get("__main__"), "__spec__", None)
            if not (interrupted and getattr(spec, "name", None) == f"{__name__.split('.')[0]}.__main__"):
                for s, handler in before.items():
                    signal.signal(s, handler)

    stopping: list[int] = []
    return wrapped
