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
    ignored, the stop goes on (silently for the same signal within a second: one stop sent to the process and its
    group). A signal the process started ignoring stays ignored, as a background job of a script ignores SIGINT
    from its start."""
    import functools
    import signal
    import sys
    import threading
    import time

    def stop(signum, frame):
        now = time.monotonic()
        if stopping:
            first, at = stopping[0]  # the same signal within a second is one stop sent twice (timeout -s INT
            if signum != first or now - at > 1:  # signals the command, then its process group)
                print(f"stif_core: already stopping (signal {signum} ignored); kill -9 {os.getpid()} ends it at "
                      "once", file=sys.stderr, flush=True)
            return
        stopping.append((signum, now))
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
            interrupted = stopping.append((signal.SIGINT, time.monotonic())) or True  # Python's own Ctrl-C too
            raise
        finally:  # the command line keeps the quiet handler for the interpreter's exit; a caller gets its own back
            spec = getattr(sys.modules.get("__main__"), "__spec__", None)
            if not (interrupted and getattr(spec, "name", None) == f"{__name__.split('.')[0]}.__main__"):
                for s, handler in before.items():
                    signal.signal(s, handler)

    stopping: list[tuple[int, float]] = []  # the first stop's signal and time
    return wrapped
