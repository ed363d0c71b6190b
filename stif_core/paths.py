"""Where things are. Every place comes from an explicit setting or from the working folder, never from where
the package's files sit, so an installed copy (``pip install .``) behaves as a checkout does:

- the data root: a parameter, else ``$STIF_DATA_ROOT``, else ``shared/data/sequences`` beside the working
  folder or one of its parents (``../shared`` of a checkout);
- the project folder, which holds ``notebooks/`` (and ``configs/``, ``data/``): ``$STIF_PROJECT``, else the
  nearest folder at or above the working folder with a ``notebooks/`` folder, else the working folder;
- the output folder, which receives ``figures/`` and ``runs/``: ``$STIF_OUTPUT``, else the project folder;
- the shipped weights and the packaged data files: inside the package, read through ``importlib.resources``.
"""
from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path

ENV_DATA_ROOT = "STIF_DATA_ROOT"
ENV_PROJECT = "STIF_PROJECT"
ENV_OUTPUT = "STIF_OUTPUT"
SHIPPED_SUFFIX = ".safetensors"
NOTEBOOK_SEEDS = "notebook_seeds.json"  # beside the shipped weights: which seed each row's name stands for


def default_data_root() -> Path | None:
    """``$STIF_DATA_ROOT``, else ``shared/data/sequences`` beside the working folder or one of its parents."""
    if os.environ.get(ENV_DATA_ROOT):
        return Path(os.environ[ENV_DATA_ROOT])
    cwd = Path.cwd().resolve()
    return next((p / "shared" / "data" / "sequences" for p in (cwd, *cwd.parents)
                 if (p / "shared" / "data" / "sequences").is_dir()), None)


def project_dir() -> Path:
    """``$STIF_PROJECT``, else the nearest folder at or above the working folder that holds ``notebooks/``,
    else the working folder."""
    if os.environ.get(ENV_PROJECT):
        return Path(os.environ[ENV_PROJECT]).resolve()
    cwd = Path.cwd().resolve()
    return next((p for p in (cwd, *cwd.parents) if (p / "notebooks").is_dir()), cwd)


def output_root() -> Path:
    """``$STIF_OUTPUT``, else the project folder."""
    return Path(os.environ[ENV_OUTPUT]).resolve() if os.environ.get(ENV_OUTPUT) else project_dir()


def output_dir(name: str) -> Path:
    """``<output>/<name>`` (figures, runs), created on first use."""
    path = output_root() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def package_path(*parts: str) -> Path:
    """A path inside the installed package (``stif_core/<parts>``), through ``importlib.resources``."""
    return Path(str(resources.files("stif_core").joinpath(*parts)))


def package_file(name: str) -> Path:
    """A data file shipped inside the package (``stif_core/resources/<name>``)."""
    return package_path("resources", name)


def notebook_seeds() -> dict[str, str]:
    """Each Table 1 row's name and the seed's file it stands for where a row ships several seeds
    (``stif_core/weights/notebook_seeds.json``: ``{"stif_lite_full": "stif_lite_full_s2", ...}``, the seed with the
    lowest best val loss, a rule set before any seed was tracked: ``docs/design.md``, section 7); empty where each
    row ships one file under its own name."""
    path = package_path("weights", NOTEBOOK_SEEDS)
    return json.loads(path.read_text()) if path.is_file() else {}


def shipped_models() -> list[str]:
    """Names of the weights shipped inside the package: every file (``stif_core/weights/<name>.safetensors``) and
    every row name that stands for one of them (``notebook_seeds``)."""
    files = {p.name.removesuffix(SHIPPED_SUFFIX) for p in package_path("weights").glob(f"*{SHIPPED_SUFFIX}")}
    return sorted(files | set(notebook_seeds()))


def row_seeds(row: str) -> list[str]:
    """The shipped seeds of a Table 1 row (``full``, ``ste+sde_q``): ``stif_lite_<row>_s<k>`` in seed order, or
    the row's single file where it ships one."""
    name = f"stif_lite_{row.replace('+', '_')}"
    seed = re.compile(re.escape(name) + r"_s(\d+)$")
    found = {int(m[1]): m[0] for n in shipped_models() if (m := seed.match(n))}
    return [found[k] for k in sorted(found)] or ([name] if name in shipped_models() else [])


def checkpoint_path(checkpoint: str | Path) -> Path:
    """A weights file: a shipped model's name (``stif_lite_full``, a row's name, stands for the seed the notebooks
    use; ``stif_lite_full_s1`` names a seed), else a path. A bare name (no folder, no extension) is only ever a
    shipped model's, whatever files the working folder holds: a file is given with a folder or its extension
    (``./stif_lite_full``, ``model.safetensors``). ``FileNotFoundError`` names both places looked at."""
    path = Path(checkpoint)
    bare = "/" not in str(checkpoint) and os.sep not in str(checkpoint) and not path.suffix
    if not bare and path.exists():  # anything but a regular file is refused, named, where it is read
        return path
    name = path.name.removesuffix(SHIPPED_SUFFIX)
    shipped = package_path("weights", notebook_seeds().get(name, name) + SHIPPED_SUFFIX)
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    if bare and path.exists():
        raise FileNotFoundError(f"checkpoint {str(checkpoint)!r} is no shipped model's name (shipped: "
                                f"{shipped_models()}); for the file of that name in the working folder, give "
                                f"./{checkpoint}")
    raise FileNotFoundError(f"checkpoint {str(checkpoint)!r}: no such file, and no shipped model of that name "
                            f"(shipped: {shipped_models()})")
