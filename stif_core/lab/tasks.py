"""Batches of tasks, each one function call with its resources, run on Ray: a local Ray started for the process by
default, a running cluster with ``address`` (or ``$RAY_ADDRESS``): a Slurm allocation, KubeRay, two machines.
Without Ray (it is the ``cluster`` extra), or with ``use_ray=False``, the tasks run in this machine's processes.
Either way the results are the same: each task is the same call, its threads fixed by the task itself.

A task whose worker dies (a killed process, a lost node) is retried by Ray (``RETRIES``) and resumes from what it
kept (a training from its checkpoint, an evaluation from its finished sequences). A ``ledger`` file records each
finished task with its key; a later batch with the same ledger keeps those and runs only the rest.
``python -m stif_core report|sweep --address HOST:PORT`` (docs/cluster.md)."""
from __future__ import annotations

import json
import math
import os
import platform
import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import cache
from multiprocessing import get_context
from pathlib import Path

from ..data.digests import file_digest
from ..files import json_object, write_text

RETRIES = 3  # attempts after a worker's death (Ray's); an exception raised by the task itself is never retried
CONNECT_S = 10  # seconds to reach a cluster's head before --address is refused
INSTALL = "Ray is not installed: pip install 'stif_core[cluster]' (or pip install ray)"


@dataclass(frozen=True)
class Task:
    """``fn(**kwargs)`` (a module-level function: it is pickled by name), named ``label``; ``key``: what makes a
    recorded result this task's (its inputs, as JSON); ``cpus``/``gpus``: what Ray reserves for it."""

    label: str
    fn: Callable
    kwargs: dict
    key: dict = field(default_factory=dict)
    output: str | None = None  # a file the task writes: a recorded result is kept only while it holds those bytes
    cpus: float = 1
    gpus: float = 0


def call(fn: Callable, kwargs: dict) -> dict:
    """Run one task where it was sent: its value, the seconds it took and the node that ran it."""
    start = time.perf_counter()
    value = fn(**kwargs)
    return {"value": value, "seconds": round(time.perf_counter() - start, 3), "node": node_id()}


def plain(value):
    """``value`` as JSON reads it back (paths as text)."""
    return json.loads(json.dumps(value, default=str))


def node_id() -> str:
    """The Ray node running this process (its id), else the host name."""
    try:
        import ray
    except ImportError:
        return platform.node()
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else platform.node()


def ray_installed() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def on_ray(tasks: list[Task], address: str | None, cpus: int) -> Iterator[tuple[str, dict]]:
    """(label, ``call``'s result) as each task finishes on Ray; a failed task raises its own exception, and the
    others are cancelled."""
    import ray
    from ray.exceptions import RayError, RayTaskError

    if not ray.is_initialized():  # one Ray session for every batch of this process
        address = cluster_address(address)
        ray.init(address=address, num_cpus=None if address else cpus, include_dashboard=False,
                 configure_logging=False, log_to_driver=False)  # tasks write their own files (notebooks, logs)
        found = ray.cluster_resources()
        print(f"Ray: {'the cluster at ' + address if address else 'local'}, {found.get('CPU', 0):.0f} CPUs, "
              f"{found.get('GPU', 0):.0f} GPUs", flush=True)
        if max(t.gpus for t in tasks) > found.get("GPU", 0):
            print("the tasks ask for a GPU each and the cluster has none now: they wait for a GPU node (Ctrl-C "
                  "stops)", flush=True)
    remote = ray.remote(call)
    labels = {remote.options(num_cpus=t.cpus, num_gpus=t.gpus, max_retries=RETRIES, name=t.label)
              .remote(t.fn, t.kwargs): t.label for t in tasks}
    pending = list(labels)
    try:
        while pending:
            (ready,), pending = ray.wait(pending, num_returns=1)
            try:
                yield labels[ready], ray.get(ready)
            except RayTaskError as err:  # the task's own error, not Ray's wrapper and its remote traceback
                raise (err.cause or err) from None
            except RayError as err:  # its worker died more often than retried, its node was lost
                raise OSError(f"task {labels[ready]!r} failed on Ray after {RETRIES} retries: {err}") from None
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def on_processes(tasks: list[Task], jobs: int) -> Iterator[tuple[str, dict]]:
    """(label, ``call``'s result) as each task finishes in a pool of ``jobs`` processes; the first failure or
    Ctrl-C stops the batch: the queued tasks are cancelled and the running ones stopped."""
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=signal.signal,
                               initargs=(signal.SIGINT, signal.SIG_IGN))  # Ctrl-C reaches this process alone
    try:
        running = {pool.submit(call, t.fn, t.kwargs): t.label for t in tasks}
        for done in as_completed(running):
            yield running[done], done.result()
    except BaseException:
        workers = list(pool._processes.values())  # the executor exposes no other way to stop a running task
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        raise
    pool.shutdown()


def cluster_address(address: str | None) -> str | None:
    """The Ray cluster the tasks go to: ``address``, else ``$RAY_ADDRESS``; None: a local Ray."""
    return address or os.environ.get("RAY_ADDRESS") or None


@cache
def check_head(address: str, given: str = "--address") -> None:
    """``ValueError`` unless something answers at ``address`` (HOST:PORT; checked once a process), which ``given``
    named (the option or ``$RAY_ADDRESS``): Ray itself retries an unreachable head for minutes."""
    host, _, port = address.rpartition(":")
    if host and port.isdigit():
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_S).close()
        except OSError as err:
            raise ValueError(f"{given} {address}: no Ray head answers there ({err.strerror or err}); start one "
                             "(ray start --head) or give the address `ray start` printed") from None


def check_where(address: str | None, use_ray: bool) -> None:
    """``ValueError`` when a cluster is named where it cannot be used (checked before any work)."""
    if address and not use_ray:
        raise ValueError(f"--address {address} names a Ray cluster; --no-ray runs the tasks here: give one of them")
    if address and not ray_installed():
        raise ValueError(f"--address {address}: {INSTALL}")
    if use_ray and ray_installed() and cluster_address(address):
        check_head(cluster_address(address), "--address" if address else "$RAY_ADDRESS")


def output_digest(task: Task) -> str | None:
    """The digest of the file ``task`` writes ("-" where there is none yet); None for a task without one."""
    if task.output is None:
        return None
    return file_digest(Path(task.output)) if Path(task.output).is_file() else "-"


def run_tasks(tasks: list[Task], address: str | None = None, cpus: int = 2, use_ray: bool = True,
              ledger: Path | None = None) -> dict[str, dict]:
    """Run ``tasks`` (on Ray when installed and ``use_ray``; ``address`` needs Ray) and return each one's result
    (``call``'s: value, seconds, node), in the tasks' order, printing a line as each finishes. ``cpus``: the local
    Ray's CPUs, or the processes at a time (each task's own ``cpus`` is at least one of them)."""
    if len({t.label for t in tasks}) < len(tasks):
        raise ValueError(f"task labels must differ: {[t.label for t in tasks]}")
    check_where(address, use_ray)
    kept = json_object(ledger) if ledger is not None else {}
    results = {t.label: kept[t.label] for t in tasks if t.label in kept and kept[t.label].get("key") == plain(t.key)
               and kept[t.label].get("output") == output_digest(t)}  # another run's file at its path: run again
    for label in results:
        print(f"kept: {label} (finished before, {ledger})", flush=True)
    todo = [t for t in tasks if t.label not in results]
    if todo:
        on_ray_here = use_ray and ray_installed()
        cluster = on_ray_here and cluster_address(address)  # its GPU nodes may not be up yet
        if not cluster and any(t.gpus for t in todo):
            import torch

            if not torch.cuda.is_available():  # Ray would wait for a GPU for ever
                raise ValueError("the tasks ask for a GPU each (--device cuda) and this machine has none: give "
                                 "--device cpu, or --address of a Ray cluster with GPU nodes")
        need = max(t.cpus for t in todo)
        if on_ray_here and not cluster and need > cpus:  # a local Ray would wait for ever for the CPUs
            raise ValueError(f"a task asks for {need:g} CPUs (a training's threads and loader processes) and --jobs "
                             f"{cpus:g} gives this machine's Ray {cpus:g}: give --jobs {math.ceil(need)} or more")
        if use_ray and not on_ray_here:
            print(f"{INSTALL}; the tasks run in this machine's processes", flush=True)
        jobs = max(1, min(len(todo), int(cpus // max(t.cpus for t in todo))))
        stream = on_ray(todo, address, cpus) if on_ray_here else on_processes(todo, jobs)
        keys = {t.label: plain(t.key) for t in todo}
        by_label = {t.label: t for t in todo}
        for label, result in stream:
            results[label] = plain(result | {"key": keys[label], "output": output_digest(by_label[label])})
            print(f"done {len(results)}/{len(tasks)}: {label} ({result['seconds']:.0f} s, node "
                  f"{result['node'][:12]})", flush=True)
            if ledger is not None:
                kept[label] = results[label]
                write_text(ledger, json.dumps(kept, indent=1))
    return {t.label: results[t.label] for t in tasks}
