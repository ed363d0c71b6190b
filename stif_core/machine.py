"""The conditions a speed figure was measured under: CPU, torch threads, load of the machine, GPU."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    """The CPU's name (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def conditions() -> dict:
    """CPU, cores, torch threads, 1-minute load average (other work competes for the cores when it exceeds
    the threads in use), torch version and GPU."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_1min": None if load is None else round(load, 2), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def describe(c: dict) -> str:
    """One line: 'AMD EPYC ..., 2 cores, 2 torch threads, load 0.31 (quiet), GPU none'."""
    busy = c["load_1min"] is not None and c["load_1min"] > 0.5
    load = "load unknown" if c["load_1min"] is None else \
        f"load {c['load_1min']:.2f} ({'other work running: figures low' if busy else 'quiet'})"
    return f"{c['cpu']}, {c['cores']} cores, {c['torch_threads']} torch threads, {load}, GPU {c['gpu'] or 'none'}"
