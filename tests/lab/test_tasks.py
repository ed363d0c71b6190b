"""The training sweep as tasks: on a local Ray, on two Ray nodes, and with a worker killed mid-task, it gathers the
numbers the same sweep gathers without Ray."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stif_core.paths import default_data_root, project_dir
from tests.helpers import cli

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.data, pytest.mark.slow, pytest.mark.subprocess]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """The shipped recipe, made small: 4 val samples, no loader process (one CPU a training), a checkpoint every
    2 steps."""
    path = tmp_path_factory.mktemp("recipe") / "tiny.json"
    path.write_text(json.dumps({"extends": str(project_dir() / "configs" / "lite.json"), "val_samples": 4,
                                "num_workers": 0, "checkpoint_every": 2}))
    return path


def sweep_args(recipe, out, *more):
    """2 rows x 2 seeds, 6 steps on one short sequence, tracked on 10 frames of another."""
    return ["sweep", "--config", str(recipe), "--variants", "baseline,full", "--seeds", "2", "--steps", "6",
            "--train-sequences", "uav-person9", "--sequences", "dudek", "--frames", "10", "--out", str(out), *more]


def scores(out):
    """Each gathered row's scores, without the frame rate (a timing), and the node that tracked it."""
    rows = json.loads((Path(out) / "table1.json").read_text())
    return ({name: {seq: {k: v for k, v in m.items() if k != "fps"} for seq, m in row["per_sequence"].items()}
             for name, row in rows.items()}, {name: row["node"] for name, row in rows.items()})


@pytest.fixture(scope="module")
def without_ray(recipe, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "plain"
    done = cli(*sweep_args(recipe, out, "--no-ray"))
    assert done.returncode == 0, done.stderr
    found, _ = scores(out)
    assert sorted(found) == ["stif-baseline-onnx-s0", "stif-baseline-onnx-s1", "stif-full-onnx-s0",
                             "stif-full-onnx-s1"]
    return found


def test_a_sweep_on_a_local_ray_gathers_the_numbers_of_a_plain_run(recipe, without_ray, tmp_path):
    done = cli(*sweep_args(recipe, tmp_path / "ray", "--jobs", "2"))
    assert done.returncode == 0, done.stderr
    assert "Ray: local, 2 CPUs" in done.stdout
    found, nodes = scores(tmp_path / "ray")
    assert found == without_ray
    assert len(set(nodes.values())) == 1


def test_a_worker_killed_mid_training_is_retried_and_resumes(recipe, without_ray, tmp_path):
    out = tmp_path / "killed"
    run = subprocess.Popen([sys.executable, "-m", "stif_core", *sweep_args(recipe, out, "--jobs", "2")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=os.environ | {"STIF_DATA_ROOT": str(default_data_root())})
    holder = out / "train" / "baseline_s0" / ".stif_core.lock.json"  # the worker training it holds the folder
    killed = None
    deadline = time.monotonic() + 240
    while killed is None and time.monotonic() < deadline and run.poll() is None:
        try:
            pid = json.loads(holder.read_text())["pid"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
            continue
        assert not (holder.parent / "model.safetensors").exists()  # still training
        os.kill(pid, signal.SIGKILL)
        killed = pid
    output, _ = run.communicate(timeout=600)
    assert killed is not None, output
    assert run.returncode == 0, output
    found, _ = scores(out)
    assert found == without_ray


@pytest.fixture
def two_nodes():
    """A Ray head and a second node joining it, on this machine, one CPU each; stopped after the test."""
    bin_ray = str(Path(sys.executable).with_name("ray"))
    env = os.environ | {"RAY_AUTH_MODE": "token"}  # the same mode on every node and the driver (docs/cluster.md)
    port = "6391"
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    try:
        subprocess.run([bin_ray, "start", "--head", "--port", port, "--include-dashboard", "false", *common],
                       check=True, capture_output=True, env=env, timeout=120)
        subprocess.run([bin_ray, "start", "--address", f"127.0.0.1:{port}", *common], check=True,
                       capture_output=True, env=env, timeout=120)
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([bin_ray, "stop", "--force"], capture_output=True, env=env, timeout=120)


def test_two_ray_nodes_share_the_tasks_and_gather_the_same_numbers(recipe, without_ray, two_nodes, tmp_path):
    address, env = two_nodes
    done = subprocess.run([sys.executable, "-m", "stif_core", *sweep_args(recipe, tmp_path / "nodes", "--address",
                                                                          address)],
                          capture_output=True, text=True, timeout=600,
                          env=env | {"STIF_DATA_ROOT": str(default_data_root())})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Ray: the cluster at" in done.stdout and "2 CPUs" in done.stdout
    found, nodes = scores(tmp_path / "nodes")
    assert found == without_ray
    assert len(set(nodes.values())) == 2, nodes  # each node tracked some of the checkpoints
