"""Table 1's training sweep as tasks (``lab.tasks``): every row x seed trained with one recipe, a task each (a
retried one resumes from its checkpoint), then each run's checkpoint tracked on the evaluation sequences, a task
each (a retried one keeps the sequences it finished), and the rows gathered into ``table1.json`` as ``report``
gathers its ablation rows. ``python -m stif_core sweep``; ``report --train`` trains its rows here."""
from __future__ import annotations

import json
from pathlib import Path

from ..files import checked_target, output_folder, outside_data, write_text
from .tasks import Task, check_where, run_tasks


def train_run(config: str, **options) -> str:
    """Train with the recipe ``config`` and ``options`` (``TrainConfig`` fields: variant, seed, out, ...), resumed
    when ``out`` holds a checkpoint; returns the checkpoint the run selected (its best val loss; the last step's
    without validation)."""
    from ..train import TrainConfig, Trainer

    trainer = Trainer(TrainConfig.load(config, **options))
    trainer.fit(progress=False)
    return str(trainer.selected)


def eval_run(checkpoint: str, sequences: list[str], out: str, frames: int | None = None,
             data_root: str | None = None, device: str = "cpu", starts: int = 1) -> dict:
    """Track ``sequences`` (their first ``frames`` frames; None: whole) with one checkpoint into ``out``; returns
    its metrics row by name."""
    import torch

    from ..data.sequences import load_sequences, resolve_root
    from .table1 import evaluate_row

    torch.set_num_threads(1)  # the same arithmetic in any worker, on Ray or not
    seqs = [s.head(frames) for s in load_sequences(sequences, resolve_root(data_root))]
    return evaluate_row([checkpoint], seqs, out, device=device, starts=starts)


def training_tasks(config: str, variants: list[str], seeds: list[int], out: Path, steps: int | None,
                   data_root: str | None, device: str, sequences: list[str] | None = None) -> list[Task]:
    """One ``train_run`` task per row x seed, into ``out/<row>_s<seed>``, reserving the run's threads and data
    loader workers (and a GPU with ``device="cuda"``); every run's options are checked here, before any task."""
    from ..train import TrainConfig

    tasks = []
    for v in variants:
        for s in seeds:
            options = {"variant": v, "seed": s, "steps": steps, "out": str(out / f"{v.replace('+', '_')}_s{s}"),
                       "data_root": data_root, "device": device, "sequences": sequences}
            cfg = TrainConfig.load(config, **options)
            tasks.append(Task(f"train {v} s{s}", train_run, {"config": str(Path(config).resolve())} | options,
                              cpus=(cfg.threads or 1) + cfg.num_workers,
                              gpus=1 if device == "cuda" else 0))
    return tasks


def sweep(config: str, variants: list[str], seeds: list[int], out: str | Path, eval_sequences: list[str],
          steps: int | None = None, train_sequences: list[str] | None = None, frames: int | None = None,
          data_root: str | None = None, device: str = "cpu", address: str | None = None, cpus: int = 2,
          use_ray: bool = True) -> dict:
    """Train and track every row x seed (tasks), gather the rows into ``out/table1.json`` and return them, each
    with the node that tracked it (``node``)."""
    from ..data.sequences import load_sequences, resolve_root

    check_where(address, use_ray)
    root = resolve_root(data_root)
    out = outside_data(out, root, "--out")
    load_sequences(eval_sequences, root)  # a bad name or file fails here, before any folder is made
    runs = training_tasks(config, variants, seeds, out / "train", steps, str(root), device, train_sequences)
    with output_folder(out, "sweep") as out:
        checked_target(out / "table1.json")  # a file of the user's there: refused before the tasks
        trained = run_tasks(runs, address, cpus, use_ray)
        shards = [Task(t.label.replace("train", "eval", 1), eval_run,
                       {"checkpoint": trained[t.label]["value"], "sequences": eval_sequences, "frames": frames,
                        "out": str(out / "eval" / Path(t.kwargs["out"]).name), "data_root": str(root),
                        "device": device}, gpus=t.gpus) for t in runs]
        rows = {}
        for run, result in zip(runs, run_tasks(shards, address, cpus, use_ray).values()):
            for name, row in result["value"].items():  # one row a checkpoint, named by its variant
                rows[f"{name}-s{run.kwargs['seed']}"] = row | {"node": result["node"]}
        write_text(out / "table1.json", json.dumps(rows, indent=1))
    return rows
