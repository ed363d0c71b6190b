"""The feature cache: the samples it gives back are the samples (masks and boxes exact, features to float16), a
run that reads it trains as a run that encodes its crops, a stopped build resumes to the same files, and a cache
of other samples is refused."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stif_core import feature_cache
from stif_core.data.sampling import TrackingSamples
from stif_core.data.synthetic import synthetic_clip
from stif_core.feature_cache import CachedSamples, mask_rectangles, rectangle_masks
from stif_core.train import TrainConfig, Trainer, build_feature_cache, cache_key, sampling_config


def tiny_config(out: Path, **kw) -> TrainConfig:
    base = dict(steps=3, batch_size=2, warmup_steps=1, freeze_backbone_steps=3, checkpoint_every=3, num_workers=0,
                threads=2, sequences=["synthetic"], out=str(out), device="cpu", lr=0.005, val_split=None)
    return TrainConfig(**(base | kw))


@pytest.fixture(autouse=True)
def synthetic_data(monkeypatch):
    clips = [synthetic_clip(30, size=(120, 160), seed=s, name=f"clip{s}") for s in (1, 2)]
    monkeypatch.setattr("stif_core.train.training_sequences", lambda cfg: clips)


def test_mask_rectangles_round_trip_box_masks():
    from stif_core.data.crops import box_mask

    boxes = [[10.3, 20.7, 60.2, 100.9], [-30, -5, 12.5, 4.2], [170, 150, 190, 200], [5.2, 5, 5.8, 90]]
    masks = torch.from_numpy(np.stack([box_mask(np.array(b), 161)[None] for b in boxes]))  # (4, 1, S, S)
    assert masks[2].sum() == 0 and masks[3].sum() == 0  # off the crop; narrower than a pixel centre
    assert torch.equal(rectangle_masks(mask_rectangles(masks), 161), masks)


def test_cached_samples_are_the_samples(tmp_path):
    cfg = tiny_config(tmp_path / "run")
    cache = build_feature_cache(cfg, tmp_path / "cache", progress=False)
    model = Trainer(cfg).model.eval()
    samples = TrackingSamples([synthetic_clip(30, size=(120, 160), seed=s, name=f"clip{s}") for s in (1, 2)],
                              sampling_config(cfg), length=6, seed=cfg.seed, model=model.cfg)
    cached = CachedSamples(cache, cache_key(cfg, model, samples))
    assert len(cached) == 6
    for k in range(6):
        live, stored = samples[k], cached[k]
        assert torch.equal(stored["memory_masks"], live["memory_masks"])
        for key in ("query_box", "positive", "skipped"):
            assert torch.equal(stored[key], live[key]), key
        with torch.no_grad():
            features = model.trunk_features(torch.cat([live["memory_images"], live["query_image"][None]]).float())
        assert stored["memory_features"].shape == features[:-1].shape  # (N, Ct, H', W')
        torch.testing.assert_close(stored["memory_features"], features[:-1], rtol=2e-3, atol=2e-3)
        torch.testing.assert_close(stored["query_features"], features[-1], rtol=2e-3, atol=2e-3)


def test_a_cache_of_a_cuda_config_says_it_is_encoded_on_the_cpu(tmp_path):
    with pytest.warns(UserWarning, match="encoded on the CPU; the config's device 'cuda' is the training's"):
        build_feature_cache(tiny_config(tmp_path / "run", device="cuda"), tmp_path / "cache", progress=False)


def test_a_run_on_the_cache_trains_as_a_run_on_the_crops(tmp_path):
    plain = tiny_config(tmp_path / "plain")
    cache = build_feature_cache(plain, tmp_path / "cache", progress=False)
    Trainer(plain).fit(progress=False)
    Trainer(tiny_config(tmp_path / "cached", feature_cache=str(cache))).fit(progress=False)
    rows = [[json.loads(r) for r in (tmp_path / name / "log.jsonl").read_text().splitlines()]
            for name in ("plain", "cached")]
    assert len(rows[0]) == len(rows[1]) == 3
    for a, b in zip(*rows):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3), (a, b)
    # the same weights to float rounding after three SGD steps
    w = [load_file(tmp_path / name / "model.safetensors") for name in ("plain", "cached")]
    for name in w[0]:
        torch.testing.assert_close(w[0][name], w[1][name], rtol=1e-3, atol=1e-4)


def test_a_stopped_build_resumes_to_the_same_files(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path / "run", batch_size=1)
    whole = build_feature_cache(cfg, tmp_path / "whole", progress=False)
    monkeypatch.setattr(feature_cache, "FLUSH_EVERY", 1)
    calls = {"n": 0}
    real = feature_cache.trunk_outputs

    def stop_at_third(batch, trunk, device):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(batch, trunk, device)

    monkeypatch.setattr(feature_cache, "trunk_outputs", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        build_feature_cache(cfg, tmp_path / "stopped", progress=False)
    assert json.loads((tmp_path / "stopped" / "cache.json").read_text())["done"] == 2
    with pytest.raises(ValueError, match=r"incomplete \(2 of 3 samples\)"):
        Trainer(tiny_config(tmp_path / "early", batch_size=1, feature_cache=str(tmp_path / "stopped"))).fit(
            progress=False)
    monkeypatch.setattr(feature_cache, "trunk_outputs", real)
    build_feature_cache(cfg, tmp_path / "stopped", progress=False)
    for name in ("features", "masks", "query_boxes", "positive", "skipped"):
        assert np.array_equal(np.load(whole / f"{name}.npy"), np.load(tmp_path / "stopped" / f"{name}.npy")), name


def test_a_cache_of_other_samples_is_refused(tmp_path):
    cache = build_feature_cache(tiny_config(tmp_path / "run"), tmp_path / "cache", progress=False)
    with pytest.raises(ValueError, match=r"another run \(seed=0 \(now 1\)\)"):
        Trainer(tiny_config(tmp_path / "s1", seed=1, feature_cache=str(cache))).fit(progress=False)
    with pytest.raises(ValueError, match=r"sampling.mask_jitter=0.3 \(now 0.0\)"):
        Trainer(tiny_config(tmp_path / "mj", sampling={"mask_jitter": 0.0}, feature_cache=str(cache))).fit(
            progress=False)
    with pytest.raises(ValueError, match="holds other samples"):
        build_feature_cache(tiny_config(tmp_path / "run", seed=1), cache, progress=False)
    with pytest.raises(ValueError, match="trains the trunk from step 1"):
        tiny_config(tmp_path / "free", freeze_backbone_steps=1, feature_cache=str(cache))
    other = build_feature_cache(tiny_config(tmp_path / "run1", seed=1), tmp_path / "cache1", progress=False)
    (cache / "features.npy").write_bytes((other / "features.npy").read_bytes())  # another seed's features copied in
    with pytest.raises(ValueError, match="cache.json does not describe the array files beside it"):
        Trainer(tiny_config(tmp_path / "swapped", feature_cache=str(cache))).fit(progress=False)


def test_a_cut_cache_is_refused_by_the_build_that_would_resume_it(tmp_path):
    """numpy's read-write map extends a cut file with zeros: a build resuming a cut cache would have kept its
    count of finished samples over zeros."""
    cache = build_feature_cache(tiny_config(tmp_path / "run"), tmp_path / "cache", progress=False)
    path = cache / "features.npy"
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(ValueError, match="features.npy cannot be read"):
        build_feature_cache(tiny_config(tmp_path / "run"), cache, progress=False)
    assert path.stat().st_size == size // 2  # not filled up


def test_a_cache_with_no_room_on_its_disk_is_one_line_not_a_bus_error(tmp_path, monkeypatch):
    """The arrays are written through memory maps, where a full disk is SIGBUS ("Bus error", exit 135, no
    message): the bytes are checked and allocated before any is mapped."""
    import resource
    import shutil

    cfg = tiny_config(tmp_path / "run")
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=10_000))
    with pytest.raises(OSError, match=rf"feature cache folder {tmp_path / 'full'} needs [\d,]+ bytes and its disk "
                                      r"has 10,000 free .*: free space, or choose another folder"):
        build_feature_cache(cfg, tmp_path / "full", progress=False)
    assert not list((tmp_path / "full").glob("*.npy"))
    monkeypatch.setattr(shutil, "disk_usage", real)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, hard))  # ulimit -f: what the disk has, the files may not
    try:
        with pytest.raises(OSError, match=rf"cannot write {tmp_path / 'limited' / 'features.npy'}: File too large; "
                                          r"the cache needs [\d,]+ bytes in all"):
            build_feature_cache(cfg, tmp_path / "limited", progress=False)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_loader_process_that_cannot_write_its_batch_is_one_line(tmp_path):
    """A data loader process hands its batch over in shared memory, a file that a file-size limit (``ulimit -f``)
    cuts: the build stops with the process's own words and what is kept, not a traceback of two processes."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, hard))
    try:
        with pytest.raises(OSError, match=r"^a data loader process stopped \(RuntimeError: unable to resize file .*"
                                          r"File too large \(27\)\); the samples encoded before it are kept in "):
            build_feature_cache(tiny_config(tmp_path / "run", num_workers=1), tmp_path / "cache", progress=False)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
