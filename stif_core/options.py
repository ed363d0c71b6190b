"""Option sections (model, sampling, training) as dataclasses whose every field is checked by name: its type
from the annotation, its range and its valid choices; a wrong one is a ``ValueError`` naming the option."""
from __future__ import annotations

import math
from dataclasses import fields
from numbers import Integral, Real


def is_int(v) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def is_number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)


TYPES = {  # annotation -> check
    "str": lambda v: isinstance(v, str),
    "str | None": lambda v: v is None or isinstance(v, str),
    "int": is_int,
    "float": is_number,
    "bool": lambda v: isinstance(v, bool),
    "dict": lambda v: isinstance(v, dict),
    "list[str] | None": lambda v: v is None or (isinstance(v, list) and all(isinstance(n, str) for n in v)),
}


def check_options(options, label: str, ranges: dict[str, tuple] | None = None,
                  choices: dict[str, tuple] | None = None) -> None:
    """Every field of the dataclass instance ``options`` of its annotated type, within ``ranges[name]`` (low, high;
    None: open) and among ``choices[name]``; ``ValueError`` "<label> <name>=<value> is not valid: ..." otherwise."""
    for f in fields(options):
        value = getattr(options, f.name)
        if not TYPES[f.type](value):
            raise ValueError(f"{label} {f.name}={value!r} is not valid: expected {f.type}")
        low, high = (ranges or {}).get(f.name, (None, None))
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise ValueError(f"{label} {f.name}={value!r} is not valid: must be {bounds}")
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
