"""Option sections (model, sampling, training) as dataclasses whose every field is checked by name: its type
from the annotation, its range and its valid choices; a wrong one is a ``ValueError`` naming the option. And the
command line's number types, each with its bound (``bounded_int``, ``bounded_float``, ``positive_int``), and its
name lists (``name_list``)."""
from __future__ import annotations

import argparse
import math
import os
from dataclasses import fields
from numbers import Integral, Real

# Bounds shared by the command line and the option sections.
MAX_STEPS = 10**7  # training steps, frames: beyond any run (10^7 frames: a day of tracking at 100 frames/s)
MAX_SEED = 2**31 - 1
MAX_JOBS = 4 * (os.cpu_count() or 1)  # processes or threads at a time: beyond 4 per CPU core they only queue
JOBS_BOUND = "4 per CPU core"
MAX_STARTS = 100  # starts per sequence of OTB's temporal robustness evaluation (OTB's own: 20)
MAX_FPS = 1000  # frames per second of a video or a folder of frames
MIN_FPS = 0.01  # OpenCV's MP4 writer opens no video below it (0.001: no encoder time base)


def plain_float(text: str) -> float:
    """``float(text)`` for a number as people write it: ``ValueError`` for Python's digit separators too (``float``
    reads ``1_23`` as 123)."""
    if "_" in text:
        raise ValueError(f"could not convert string to float: {text!r}")
    return float(text)


def bounded_int(low: int, high: int, why: str = ""):
    """An argparse type: an integer in [low, high] (``why``: what the bound stands for, in the message)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not an integer in [{low}, {high}]"
                                             + (f" ({why})" if why else ""))
        return value

    return parse


def positive_int(high: int, why: str = ""):
    """An argparse type: an integer in [1, high]."""
    return bounded_int(1, high, why)


def bounded_float(low: float, high: float, above: bool = False):
    """An argparse type: a number in [low, high] (``above``: in (low, high]), bounds finite, so that nan and the
    infinities are refused too."""
    def parse(text: str) -> float:
        try:
            value = plain_float(text)
        except ValueError:
            value = math.nan
        if not ((low < value if above else low <= value) and value <= high):
            raise argparse.ArgumentTypeError(f"{text} is not a number in {'(' if above else '['}{low}, {high}]")
        return value

    return parse


def name_list(valid: tuple[str, ...]):
    """An argparse type: comma-separated names, at least one, each one of ``valid``, each once."""
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(n for n in text.split(",") if n)
        unknown = [n for n in names if n not in valid]
        if not names or unknown:
            raise argparse.ArgumentTypeError(f"{text!r}: give one or more of {', '.join(valid)}"
                                             + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise argparse.ArgumentTypeError(f"{text!r} names {', '.join(twice)} more than once")
        return names

    return parse


def is_number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)


TYPES = {  # annotation -> check
    "str": lambda v: isinstance(v, str),
    "str | None": lambda v: v is None or isinstance(v, str),
    "int": lambda v: isinstance(v, Integral) and not isinstance(v, bool),
    "float": is_number,
    "bool": lambda v: isinstance(v, bool),
    "dict": lambda v: isinstance(v, dict),
    "list[str] | None": lambda v: v is None or (isinstance(v, list) and all(isinstance(n, str) for n in v)),
}


def check_options(options, label: str, ranges: dict[str, tuple], choices: dict[str, tuple] | None = None) -> None:
    """Every field of the dataclass instance ``options`` of its annotated type, every number within
    ``ranges[name]`` (low, high) and among ``choices[name]``; ``ValueError`` naming the option otherwise."""
    for f in fields(options):
        value = getattr(options, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{label} {f.name}={value!r} is not valid: must be finite")
        if not TYPES[f.type](value):
            raise ValueError(f"{label} {f.name}={value!r} is not valid: expected {f.type}")
        if f.type in ("int", "float"):
            low, high = ranges[f.name]
            if not low <= value <= high:
                raise ValueError(f"{label} {f.name}={value!r} is not valid: must be in [{low}, {high}]")
        valid = (choices or {}).get(f.name)
        if valid is not None and value not in valid:
            raise ValueError(f"{label} {f.name}={value!r} is not valid: one of {list(valid)}")


def from_options(cls, raw: dict, label: str):
    """``cls(**raw)`` with unknown names refused by name (``label``: what the section is called in messages)."""
    if not isinstance(raw, dict):
        raise ValueError(f"{label}: expected an object of options, got {raw!r}")
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - valid)
    if unknown:
        raise ValueError(f"unknown {label}(s) {unknown}; valid: {sorted(valid)}")
    return cls(**raw)
