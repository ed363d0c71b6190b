"""The command line's commands, one module each: ``register(subparsers)`` adds the command's parser (its ``run``
as the default), ``run(args)`` does the work with its heavy imports inside, and ``RESUME`` says what an
interrupted run keeps and how to go on. ``python -m stif_core`` (``stif_core/__main__.py``) dispatches."""
from __future__ import annotations

from . import bench, book, cache, clip, compare, demo, evaluate, health, references, report, track, train

COMMANDS = (demo, train, cache, evaluate, compare, bench, report, health, references, track, clip, book)
