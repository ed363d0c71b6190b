"""Speed and memory figures (printed, never asserted): ``python -m stif_core bench [--json PATH]``.

- end-to-end tracking FPS (frame decoding, cropping, network, post-processing) and network-only latency, for
  both presets on the CPU and, when present, on the GPU, the lite model also on ONNX Runtime at its own crop and
  at a smaller search crop; OpenCV's peers in the same run, every tracker timed in interleaved rounds;
- resident memory of the process against the number of frames tracked on ``dog1``;
- with ``--profile``, where a lite tracking frame's time goes; with ``--training CONFIG``, a training step's.
Every figure is printed beside the conditions it ran under (CPU, threads, load before the run).
"""
from __future__ import annotations

import json
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from .. import build_model
from ..checkpoint import load_model, read_metadata
from ..data.sequences import Sequence, load_sequences, resolve_root
from ..data.synthetic import synthetic_clip
from ..files import outside_data, writable_file, write_text
from ..machine import conditions, describe
from ..paths import checkpoint_path
from ..tracking.baselines import make_baseline
from ..tracking.engine import TorchEngine
from ..tracking.tracker import STIFTracker


def rss_mib() -> float:
    """Current resident set size of this process in MiB (Linux), else the peak so far."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def network_latency_ms(model, device: torch.device, repeats: int = 20) -> float:
    """Median time of one tracking step's network work, as the tracker does it: a query encode, a step over
    N = T + 1 memory frames and the memory encode of the frame that enters memory."""
    cfg = model.cfg
    s, n = cfg.crop_size, cfg.memory_size + 1
    image = torch.rand(1, 3, s, s, device=device) * 255
    mask = torch.ones(1, 1, s, s, device=device)
    engine = TorchEngine(model)
    memory = torch.stack([engine.memory(image, mask)] * n, 1)  # (1, N, C, H, W)
    times = []
    for i in range(repeats + 3):
        sync(device)
        t0 = time.perf_counter()
        query = engine.query(image)  # F_q (1, C, H, W)
        engine.step(memory, query)
        engine.memory(image, mask, query)
        sync(device)
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def tracking_fps(tracker, seq: Sequence, frames: int) -> float:
    """Frames per second over ``frames`` frames after the first, decoding included. Callers make one untimed pass
    first: the first step of each memory size exports its ONNX step session or builds its CPU kernels (0.2-0.9 s,
    once per model), which is not the tracker's speed (docs/design.md, section 12)."""
    tracker.init(seq.frame(0), seq.boxes[0])
    n = min(frames, len(seq) - 1)
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        tracker.update(seq.frame(i))
    return n / (time.perf_counter() - t0)


PARTS = ("crop", "query encode", "step", "select", "memory encode")  # an update's labelled parts
STEP_PARTS = ("enhance", "fusion", "head")  # inside "step" (PyTorch engine only)


def profile_tracking(tracker, seq: Sequence, frames: int) -> dict[str, float]:
    """Milliseconds per frame of each labelled part of ``update`` (torch.profiler, children included), of the
    step's own parts, the whole update, and "other": the Python around the parts."""
    tracking_fps(tracker, seq, frames)  # the untimed pass
    n = min(frames, len(seq) - 1)
    images = [seq.frame(i) for i in range(1, n + 1)]  # decoded outside the profile
    tracker.init(seq.frame(0), seq.boxes[0])
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for image in images:
            tracker.update(image)
        total = (time.perf_counter() - t0) * 1000 / n
    times = {e.key: e.cpu_time_total / 1000 / n for e in prof.key_averages()}
    parts = {k: round(times.get(k, 0.0), 2) for k in PARTS}
    inner = {f"step: {k}": round(times[k], 2) for k in STEP_PARTS if k in times}
    return parts | inner | {"other": round(total - sum(parts.values()), 2), "update": round(total, 2)}


MEMORY_FRAMES_PER_FRAME = 15  # the memory curve's length per --frames: all of dog1's 1,350 by default


def memory_curve(tracker, seq: Sequence, frames: int, every: int = 150, progress: bool = True) -> list[dict]:
    """Resident memory after every ``every`` frames of the sequence's first ``frames`` (at most all)."""
    from tqdm.auto import tqdm

    tracker.init(seq.frame(0), seq.boxes[0])
    rows = [{"frames": 1, "rss_mib": round(rss_mib(), 1)}]
    end = min(frames, len(seq))
    for i in tqdm(range(1, end), desc=f"memory over {seq.name}", unit="frame", disable=not progress):
        tracker.update(seq.frame(i))
        if (i + 1) % every == 0 or i == end - 1:
            rows.append({"frames": i + 1, "rss_mib": round(rss_mib(), 1),
                         "memory_frames": len(tracker.memory())})
    return rows


def bench_sequence(name: str, data_root: str | None) -> Sequence:
    try:
        return load_sequences([name], data_root)[0]
    except (FileNotFoundError, ValueError) as err:
        print(f"{name}: {err}; using a synthetic clip")
        return synthetic_clip(300, seed=0, name=f"synthetic (standing in for {name})")


def training_profile(config: str, batches: int = 3, data_root: str | None = None) -> dict[str, float]:
    """Seconds per training batch of ``config``'s recipe at its first step, in this process, by part: decode,
    samples (decode included), trunk forward, step (trunk included) and cached step (on the trunk's features, as a
    feature cache gives them); ``data_root`` overrides the config's. The first batch warms up and is not counted."""
    import tempfile

    from torch.utils.data import default_collate

    from ..data.sampling import TrackingSamples
    from ..losses import trunk_outputs
    from ..train import TrainConfig, Trainer, sampling_config, set_trunks_trainable, training_sequences

    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig.load(config, out=out, data_root=data_root)
        trainer = Trainer(cfg)
        data = TrackingSamples(training_sequences(cfg), sampling_config(cfg), length=batches * cfg.batch_size,
                               seed=cfg.seed, model=trainer.model.cfg)
        trainer.net.train()
        set_trunks_trainable(trainer.model, cfg.freeze_backbone_steps == 0)
        if cfg.trunk_engine == "onnx" and cfg.freeze_backbone_steps > 0:
            from ..model.ort import FrozenTrunk

            trainer.frozen_trunk = FrozenTrunk(trainer.model)
        trunk = trainer.frozen_trunk or trainer.model.query_encoder.features
        parts = {"decode": 0.0, "samples": 0.0, "trunk forward": 0.0, "step": 0.0, "cached step": 0.0}
        for b in range(batches):
            ks = range(b * cfg.batch_size, (b + 1) * cfg.batch_size)
            t0 = time.perf_counter()
            for k in ks:  # the frames sample k reads (its first attempt)
                s, ids = data.pick_frames(np.random.default_rng([cfg.seed, k, 0]))
                for i in ids:
                    data.sequences[s].frame(int(i))
            t1 = time.perf_counter()
            batch = default_collate([data[k] for k in ks])
            t2 = time.perf_counter()
            with torch.no_grad():
                memory, query = trunk_outputs(batch, trunk, trainer.device)  # (B, N, Ct, H', W'), (B, Ct, H', W')
            t3 = time.perf_counter()
            trainer.train_step(batch)
            t4 = time.perf_counter()
            cached = {k: v for k, v in batch.items() if k not in ("memory_images", "query_image")}
            trainer.train_step(cached | {"memory_features": memory, "query_features": query})
            t5 = time.perf_counter()
            for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                parts[key] += dt / (batches - 1) if b else 0.0
    return parts


def print_training_profile(config: str, parts: dict[str, float], machine: dict) -> None:
    print(f"training step of {config}, seconds per batch: {describe(machine)}")
    for name, seconds in parts.items():
        print(f"  {name:<14} {seconds:7.2f} s")
    print(f"  the trunk's forward is {parts['trunk forward'] / parts['step']:.0%} of the step; building the samples "
          f"takes {parts['samples'] / parts['step']:.0%} of a step's time (on a worker, beside the step); a run "
          f"that reads a feature cache takes {parts['cached step'] / parts['step']:.0%} of a step's time and builds "
          "no sample")


FAST_SEARCH = 129  # the lite tracker's fast search crop (``STIFTracker(search_size=...)``; docs/design.md, section 12)


def speed_rows(trackers: dict[str, tuple[str, object, int, float | None]], seq: Sequence, rounds: int) -> list[dict]:
    """Every tracker's end-to-end FPS on ``seq`` (``trackers``: name -> (device, tracker, frames, network ms)),
    after one untimed pass of each, in ``rounds`` interleaved rounds, so that a machine whose speed drifts during
    the run slows every tracker alike: the median over rounds, its range, and each round's figures."""
    fps = {name: [] for name in trackers}
    for _, tracker, n, _ in trackers.values():
        tracking_fps(tracker, seq, n)  # the untimed pass
    for _ in range(rounds):
        for name, (_, tracker, n, _) in trackers.items():
            fps[name].append(round(tracking_fps(tracker, seq, n), 1))
    return [{"tracker": name, "device": device, "fps": statistics.median(fps[name]),
             "fps_range": [min(fps[name]), max(fps[name])], "fps_rounds": fps[name], "network_ms": net,
             "frames": n} for name, (device, _, n, net) in trackers.items()]


def ratio_to_csrt(rows: list[dict], name: str) -> tuple[float, float, float]:
    """A tracker's FPS over CSRT's, round by round (the two measured a few seconds apart): median, min, max."""
    fps = {r["tracker"]: r["fps_rounds"] for r in rows}
    ratios = [a / b for a, b in zip(fps[name], fps["csrt"])]
    return statistics.median(ratios), min(ratios), max(ratios)


def timed_frames(frames: int, preset: str, device: str) -> int:
    """Frames a speed row tracks: those asked, the paper network on a CPU (slow) a fifth of them, at least 10 and
    never more than asked."""
    return frames if preset == "lite" or device == "cuda" else min(frames, max(10, frames // 5))


def run(data_root: str | None = None, checkpoint: str | None = None, frames: int = 100,
        memory_sequence: str = "dog1", json_path: str | None = None, profile: bool = False,
        rounds: int = 3, search_size: int | None = None) -> dict:
    torch.manual_seed(0)
    root = resolve_root(data_root) if data_root else None  # given and not there: an error, not a synthetic stand-in
    if json_path:
        outside_data(json_path, root, "--json")  # before any folder is made for it
    json_path = writable_file(json_path, "--json") if json_path else None  # before a minute of timing
    if json_path and json_path.exists():
        raise ValueError(f"--json {json_path} exists; bench never replaces a file: give another name")
    search_size = search_size or FAST_SEARCH
    trained = read_metadata(checkpoint_path(checkpoint)).get("preset", "lite") if checkpoint else None
    machine = conditions()  # the load before this run's own work
    seq = bench_sequence("crossing", data_root)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    trackers = {}
    for device in devices:
        d = device.type
        for preset in ("lite", "paper"):  # the checkpoint's preset runs its weights, the other one untrained
            if preset == trained:
                model = load_model(checkpoint, device=d)
            else:
                model = build_model(preset, "full", device=d, pretrained=preset == "lite").eval()
            n = timed_frames(frames, preset, d)
            fast = {}  # ONNX Runtime at the model's crop and at the fast search (a bad size fails before any timing)
            if preset == "lite" and d == "cpu":
                fast = {"stif-lite-onnx": (d, STIFTracker(model, engine="onnx"), n, None),
                        f"stif-lite-onnx-s{search_size}": (
                            d, STIFTracker(model, engine="onnx", search_size=search_size), n, None)}
            print(f"timing the {preset} network on {d} ...", flush=True)
            net = round(network_latency_ms(model, device), 2)
            trackers[f"stif-{preset}" + ("-cuda" if d == "cuda" else "")] = (d, STIFTracker(model), n, net)
            trackers |= fast
    for peer in ("csrt", "nanotrack", "vittrack"):
        trackers[peer] = ("cpu", make_baseline(peer), frames, None)
    print(f"tracking {seq.name}: {len(trackers)} trackers, one untimed pass and {rounds} round(s) each ...", flush=True)
    rows = speed_rows(trackers, seq, rounds)
    lite = load_model(checkpoint) if trained == "lite" else build_model("lite", "full").eval()
    memory_seq = bench_sequence(memory_sequence, data_root)
    curve = memory_curve(STIFTracker(lite), memory_seq, MEMORY_FRAMES_PER_FRAME * frames)
    report = {"machine": machine, "sequence": seq.name, "rounds": rounds, "speed": rows,
              "memory": {"sequence": memory_seq.name, "curve": curve},
              "weights": {p: str(checkpoint) if p == trained else "untrained (ImageNet trunk for lite)"
                          for p in ("lite", "paper")}}
    if profile:
        engines = {"torch": {}, "onnx": {"engine": "onnx"},
                   f"onnx, search {search_size}": {"engine": "onnx", "search_size": search_size}}
        report["profile_ms"] = {name: profile_tracking(STIFTracker(lite, **kw), seq, frames)
                                for name, kw in engines.items()}
    print_report(report)
    if json_path:
        write_text(json_path, json.dumps(report, indent=2))
    return report


def print_report(report: dict) -> None:
    print(f"speed on {report['sequence']}: {describe(report['machine'])}")
    print(f"end-to-end FPS: median of {report['rounds']} interleaved rounds [range]")
    print(f"{'tracker':<22} {'device':<6} {'FPS end-to-end':>20} {'network ms':>11} {'frames':>7}")
    for r in report["speed"]:
        net = f"{r['network_ms']:.2f}" if r["network_ms"] is not None else "-"
        fps = f"{r['fps']:.1f} [{r['fps_range'][0]:.1f}, {r['fps_range'][1]:.1f}]"
        print(f"{r['tracker']:<22} {r['device']:<6} {fps:>20} {net:>11} {r['frames']:>7}")
    print("weights: " + "; ".join(f"stif-{p}: {w}" for p, w in report["weights"].items()))
    print(f"resident memory while tracking {report['memory']['sequence']} (lite):")
    print(" ".join(f"{r['frames']}:{r['rss_mib']:.0f}MiB" for r in report["memory"]["curve"]))
    mems = [r["rss_mib"] for r in report["memory"]["curve"][1:]]
    if len(mems) > 1:
        print(f"growth from the first to the last checkpoint: {mems[-1] - mems[0]:+.1f} MiB; "
              f"memory frames held: {sorted({r.get('memory_frames') for r in report['memory']['curve'][1:]})}")
    for r in report["speed"]:
        if (r["tracker"].startswith("stif-lite") or r["tracker"] in ("nanotrack", "vittrack")) and r["device"] == "cpu":
            mid, low, high = ratio_to_csrt(report["speed"], r["tracker"])
            print(f"{r['tracker']} / CSRT end-to-end FPS on the CPU: {mid:.2f} (rounds {low:.2f} to {high:.2f})")
    for engine, parts in report.get("profile_ms", {}).items():
        print(f"where a lite frame's time goes, engine {engine} (ms per frame, torch.profiler; decoding excluded):")
        print("  " + "  ".join(f"{k} {v:.1f}" for k, v in parts.items()))
