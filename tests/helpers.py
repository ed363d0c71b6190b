"""Helpers shared by test modules (fixtures live in conftest.py)."""
import os
import subprocess
import sys
from pathlib import Path

import stif_core
from stif_core.paths import default_data_root


def cli(*args, cwd=None):
    """``python -m stif_core ARGS`` on the package under test, with the data root found here."""
    root = default_data_root()
    env = os.environ | ({"STIF_DATA_ROOT": str(root)} if root else {})
    env["PYTHONPATH"] = str(Path(stif_core.__file__).parent.parent)  # the stif_core under test
    return subprocess.run([sys.executable, "-m", "stif_core", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)
