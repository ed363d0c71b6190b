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

import os
from importlib import resources
from pathlib import Path

ENV_DATA_ROOT = "STIF_DATA_ROOT"
ENV_PROJECT = "STIF_PROJECT"
ENV_OUTPUT = "STIF_OUTPUT"
SHIPPED_SUFFIX = ".safetensors"


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


def shipped_models() -> list[str]:
    """Names of the weights shipped inside the package (``stif_core/weights/<name>.safetensors``)."""
    return sorted(p.name.removesuffix(SHIPPED_SUFFIX) for p in package_path("weights").glob(f"*{SHIPPED_SUFFIX}"))


def checkpoint_path(checkpoint: str | Path) -> Path:
    """A weights file: an existing path as given, else a shipped model's name (``stif_lite_full``).
    ``FileNotFoundError`` names both places looked at."""
    path = Path(checkpoint)
    if path.is_file():
        return path
    shipped = package_path("weights", path.name.removesuffix(SHIPPED_SUFFIX) + SHIPPED_SUFFIX)
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    raise FileNotFoundError(f"checkpoint {str(checkpoint)!r}: no such file, and no shipped model of that name "
                            f"(shipped: {shipped_models()})")
