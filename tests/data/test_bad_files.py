"""Every file the package reads is named when it cannot be used, one line per kind of bad file: text in another
encoding, a path that is not a regular file (a FIFO never blocks a reader), a truncated or foreign feature cache,
checkpoint metadata or training checkpoint, metrics rows of the wrong shape, a corrupt notebook."""
import json
import os
import re
import shutil
import threading

import numpy as np
import pytest
import torch
from helpers import cli
from numpy.lib.format import open_memmap
from safetensors.torch import load_file, save_file

from stif_core.checkpoint import load_model
from stif_core.data.sequences import FrameError, read_otb_sequence
from stif_core.data.synthetic import synthetic_clip
from stif_core.data.video import FrameSource
from stif_core.evaluation.results import read_metrics
from stif_core.feature_cache import ARRAYS, META, CachedSamples, content_digest
from stif_core.lab.book import check_notebooks
from stif_core.lab.report import suite
from stif_core.paths import default_data_root
from stif_core.train import TrainConfig, Trainer

SEQUENCE = "dudek"  # 21 frames, 0.8 MB


@pytest.fixture
def sequence(tmp_path):
    """A copy of a real sequence (frames and ``groundtruth.txt``) to spoil."""
    copy = tmp_path / "sequences" / SEQUENCE
    shutil.copytree(default_data_root() / SEQUENCE, copy)
    return copy


def outcome(call, fifo=None, timeout: float = 20.0):
    """The exception ``call()`` raised (None: none), run in a thread; fails when it does not return within
    ``timeout`` seconds, then opens ``fifo`` for writing, which releases a reader blocked on it."""
    raised = []

    def run():
        try:
            call()
        except Exception as err:  # noqa: BLE001 - handed to the test
            raised.append(err)
        else:
            raised.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        if fifo is not None:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"still reading after {timeout} s: blocked on a FIFO")
    return raised[0]


@pytest.mark.data
@pytest.mark.parametrize("encode", [lambda t: b"\xef\xbb\xbf" + t.encode(),
                                    lambda t: b"\xff\xfe" + t.replace("\n", "\r\n").encode("utf-16-le"),
                                    lambda t: b"\xfe\xff" + t.encode("utf-16-be")],
                         ids=["utf-8-bom", "utf-16-le-bom-crlf", "utf-16-be-bom"])
def test_ground_truth_with_a_byte_order_mark_reads_as_its_utf8_text(sequence, encode):
    expected = read_otb_sequence(sequence).boxes
    gt = sequence / "groundtruth.txt"
    gt.write_bytes(encode(gt.read_text()))
    np.testing.assert_array_equal(read_otb_sequence(sequence).boxes, expected)


@pytest.mark.data
@pytest.mark.parametrize("spoil, seen", [(lambda b: b[:20] + b"\xe9" + b[20:], r"byte 0xe9 at offset 20"),
                                         (lambda b: b.decode().encode("utf-16-le"), r"byte 0x00 at offset 1")],
                         ids=["latin-1", "utf-16-without-bom"])
def test_ground_truth_in_another_encoding_names_the_file_and_the_byte(sequence, spoil, seen):
    gt = sequence / "groundtruth.txt"
    gt.write_bytes(spoil(gt.read_bytes()))
    with pytest.raises(ValueError, match=f"annotation file {re.escape(str(gt))} is not UTF-8 or UTF-16 text: {seen}"):
        read_otb_sequence(sequence)


@pytest.mark.data
@pytest.mark.parametrize("name, make, kind", [("groundtruth.txt", os.mkfifo, "a FIFO (named pipe)"),
                                              ("groundtruth.txt", os.mkdir, "a folder"),
                                              ("00000005.jpg", os.mkfifo, "a FIFO (named pipe)")])
def test_a_ground_truth_or_frame_that_is_not_a_regular_file_is_refused_without_hanging(sequence, name, make, kind):
    path = sequence / name
    path.unlink()
    make(path)
    err = outcome(lambda: read_otb_sequence(sequence).frame(4), fifo=path)
    assert isinstance(err, ValueError) and f"{path} is {kind}, not a regular file" in str(err), err
    assert isinstance(err, FrameError) == name.endswith(".jpg")


def test_a_config_checkpoint_or_video_that_is_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "named.mp4"
    os.mkfifo(fifo)
    for call, what in ((lambda: TrainConfig.load(fifo), "training config"), (lambda: load_model(fifo), "checkpoint"),
                       (lambda: FrameSource(fifo), "video")):
        err = outcome(call, fifo=fifo)
        assert isinstance(err, ValueError) and str(err) == f"{what} {fifo} is a FIFO (named pipe), not a regular file"


def write_cache(folder, length=4):
    """A complete feature cache of ``length`` zero samples, as ``feature_cache.write_cache`` lays one out; its key."""
    folder.mkdir()
    shapes = {"features": (length, 2, 3, 4, 4), "masks": (length, 1, 4), "query_boxes": (length, 4),
              "positive": (length,), "skipped": (length,)}
    for name, (dtype, _) in ARRAYS.items():
        open_memmap(folder / f"{name}.npy", "w+", dtype, shapes[name]).flush()
    key = {"length": length, "sampling": {"crop_size": 16}}
    content = content_digest({name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS})
    (folder / META).write_text(json.dumps({"key": key, "done": length, "content": content}))
    return key


@pytest.mark.parametrize("spoil, problem", [
    (lambda f: f.write_bytes(f.read_bytes()[:200]), "cannot be read (mmap length is greater than file size)"),
    (lambda f: f.write_text("x,y,w,h\n"), "cannot be read"),
    (lambda f: np.save(f, np.zeros((4, 2, 3, 4, 4), np.float32)), "holds float32 (4, 2, 3, 4, 4), not float16")])
def test_a_truncated_or_foreign_feature_cache_names_its_file_and_says_to_rebuild_it(tmp_path, spoil, problem):
    key = write_cache(tmp_path / "cache")
    assert len(CachedSamples(tmp_path / "cache", key)) == 4
    features = tmp_path / "cache" / "features.npy"
    spoil(features)
    with pytest.raises(ValueError) as caught:
        CachedSamples(tmp_path / "cache", key)
    assert str(caught.value).startswith(f"feature cache file {features} {problem}"), caught.value
    assert "build it again (python -m stif_core cache)" in str(caught.value)


@pytest.mark.parametrize("record", [{"done": 4}, {"key": ["length", 4], "done": 4}, {"key": {}, "done": "4"}, [1]])
def test_a_cache_record_without_its_key_or_count_is_one_line_naming_it(tmp_path, record):
    key = write_cache(tmp_path / "cache")
    (tmp_path / "cache" / META).write_text(json.dumps(record))
    with pytest.raises(ValueError, match=f"feature cache file {re.escape(str(tmp_path / 'cache' / META))} is not an "
                                         r"object of 'key' \(an object\) and 'done' \(a count\)"):
        CachedSamples(tmp_path / "cache", key)


@pytest.mark.parametrize("model, problem", [("{preset: lite", r"is not valid JSON \(Expecting property name"),
                                            ("[1, 2]", "must be a JSON object of model options, not list")])
def test_checkpoint_metadata_that_does_not_parse_names_the_file_and_the_key(tmp_path, model, problem):
    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"preset": "lite", "model": model, "design": "5"})
    with pytest.raises(ValueError, match=f'checkpoint {re.escape(str(path))}: metadata "model" {problem}'):
        load_model(path)


def test_a_foreign_or_truncated_training_checkpoint_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr("stif_core.train.training_sequences",
                        lambda cfg: [synthetic_clip(30, size=(120, 160), seed=1, name="clip1")])
    cfg = TrainConfig(steps=1, batch_size=2, warmup_steps=1, freeze_backbone_steps=1, checkpoint_every=1,
                      num_workers=0, threads=2, sequences=["synthetic"], out=str(tmp_path / "run"), device="cpu",
                      val_split=None)
    Trainer(cfg).fit(progress=False)
    path = tmp_path / "run" / "checkpoint.pt"
    whole = path.read_bytes()
    for spoil in (lambda: path.write_bytes(whole[:len(whole) // 2]), lambda: path.write_text("not a checkpoint"),
                  lambda: path.write_bytes(b""), lambda: torch.save([1, 2, 3], path),
                  lambda: torch.save({"model": {}, "optimizer": {}, "step": 1}, path),
                  lambda: torch.save(torch.load(path, weights_only=True) | {"model": {"conv.weight": torch.ones(1)}},
                                     path),
                  lambda: torch.save(torch.load(path, weights_only=True) | {"step": -5}, path),  # a loader traceback
                  lambda: torch.save(torch.load(path, weights_only=True) | {"step": 10**9}, path)):  # "complete"
        path.write_bytes(whole)
        spoil()
        with pytest.raises(ValueError) as caught:
            Trainer(cfg)
        message = str(caught.value)
        assert message.startswith(f"training checkpoint {path} is truncated or not one this tool wrote (")
        assert message.endswith("delete it to train from step 0, or choose another --out") and "\n" not in message


@pytest.mark.parametrize("row, problem", [
    ([1], "is list, not an object of overall, per_sequence"),
    ({"per_sequence": {"deer": 0.5}}, "per_sequence 'deer' is float, not an object of scores"),
    ({"per_sequence": {"deer": {"auc": "high"}}}, "per_sequence 'deer': auc is 'high', not a finite number"),
    ({"per_sequence": {"deer": {"auc": 0.5, "data": 7}}}, "per_sequence 'deer': data is 7, not a string"),
    ({"overall": [0.5], "per_sequence": {}}, "'overall' is not an object of scores"),
    ({"overall": {}, "per_sequence": {}, "setup": "stif"}, "'setup' is not an object")])
def test_metrics_rows_of_the_wrong_shape_name_the_file_and_the_row(tmp_path, row, problem):
    path = tmp_path / "metrics.json"
    good = {"overall": {"auc": 0.5}, "per_sequence": {"deer": {"auc": 0.5, "data": "ab12"}}, "setup": {"seed": 1}}
    path.write_text(json.dumps({"kcf": good, "stif": row}))
    with pytest.raises(ValueError, match=f"metrics file {re.escape(str(path))}, row 'stif': {re.escape(problem)}"):
        read_metrics(path)
    path.write_text(json.dumps({"kcf": good}))
    assert read_metrics(path) == {"kcf": good}


@pytest.mark.subprocess
def test_compare_on_a_metrics_entry_that_is_not_an_object_is_one_line(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"a": {"overall": {}, "per_sequence": {"x": [0.5]}}}))
    run = cli("compare", "--metrics", str(path), "--keys", "auc")
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert f"metrics file {path}, row 'a': per_sequence 'x' is list" in run.stderr


def test_a_corrupt_notebook_is_named_before_the_book_builds(tmp_path):
    notebooks = suite(ablation=True)
    check_notebooks(notebooks)  # the stored suite passes
    text = notebooks[0].read_text(encoding="utf-8")
    cut = tmp_path / notebooks[0].name
    cut.write_text(text[:len(text) // 2], encoding="utf-8")
    with pytest.raises(ValueError, match=f"notebook {re.escape(str(cut))} is not valid JSON"):
        check_notebooks([notebooks[1], cut])
    broken = json.loads(text)
    del broken["cells"][0]["source"]
    cut.write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ValueError, match=f"notebook {re.escape(str(cut))} is not a valid notebook: cells\\[0\\]: "
                                         "'source' is a required property"):
        check_notebooks([cut])
    cut.write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match="holds a JSON list, not a notebook"):
        check_notebooks([cut])


@pytest.mark.parametrize("dtype", [torch.int32, torch.float16, torch.bfloat16])
def test_a_checkpoint_tensor_of_another_dtype_is_refused_naming_it(tmp_path, dtype):
    """``load_state_dict`` casts a tensor to the model's dtype silently: an int32 or half-precision copy of a
    float32 weight had loaded as if it were the weight."""
    from stif_core.checkpoint import read_metadata
    from stif_core.paths import checkpoint_path

    shipped = checkpoint_path("stif_lite_full")
    state = {k: v.clone() for k, v in load_file(shipped).items()}
    name = next(k for k, v in state.items() if v.dtype == torch.float32)
    state[name] = state[name].to(dtype)
    save_file(state, str(tmp_path / "w.safetensors"), metadata=read_metadata(shipped))
    with pytest.raises(ValueError, match=rf"shape or dtype mismatch \(1\): {re.escape(name)}: file {dtype} vs model "
                                         r"torch.float32"):
        load_model(tmp_path / "w.safetensors")


@pytest.mark.subprocess
def test_a_checkpoint_write_over_a_file_size_limit_is_one_line_and_keeps_the_earlier_file(tmp_path):
    """safetensors and torch.save report a full disk or ``ulimit -f`` in errors of their own (``SafetensorError``,
    ``RuntimeError: [enforce fail at inline_container.cc:672] unexpected pos``): one line naming the file."""
    import subprocess
    import sys

    code = ("import resource, sys; from stif_core.checkpoint import atomic_save, load_model, save_weights\n"
            "m = load_model('stif_lite_full'); resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
            "for save, path in ((lambda p: save_weights(m, p, {}), sys.argv[1]),"
            " (lambda p: atomic_save({'model': m.state_dict()}, p), sys.argv[2])):\n"
            "    try: save(path)\n"
            "    except OSError as err: print(err)\n")
    paths = [tmp_path / "model.safetensors", tmp_path / "checkpoint.pt"]
    for path in paths:
        path.write_text("earlier")
    done = subprocess.run([sys.executable, "-c", code, *map(str, paths)], capture_output=True, text=True, timeout=300)
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stderr
    for line, path in zip(lines, paths):
        assert line.startswith(f"cannot write {path}: ") and line.endswith("; the earlier file, if any, is kept")
        assert path.read_text() == "earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "model.safetensors"]


def test_a_frame_too_large_to_decode_is_one_line_naming_it(tmp_path):
    """A PNG whose header says 20000x20000: PIL's DecompressionBombError had been a traceback in eval, clip and
    track."""
    import struct
    import zlib

    from stif_core.data.sequences import image_size, read_image

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = tmp_path / "0001.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    for read in (read_image, image_size):
        with pytest.raises(FrameError, match=f"frame {path} is too large to decode"):
            read(path)


def test_checkpoint_metadata_with_a_seed_that_is_not_a_number_names_the_file(tmp_path):
    from stif_core.evaluation.trackers import trained_with

    path = tmp_path / "w.safetensors"
    assert trained_with({"seed": "2", "recipe": "{}"}, path)["seed"] == 2
    for seed in ("NaN", "-1", "1.5", ""):
        with pytest.raises(ValueError, match=f'checkpoint {path}: metadata "seed" is {seed!r}, not a whole number'):
            trained_with({"seed": seed}, path)


def test_a_bare_name_is_a_shipped_model_whatever_the_working_folder_holds(tmp_path, monkeypatch):
    """A file ``stif_lite_full`` in the working folder had been used in place of the shipped model: a bare name is
    only ever a shipped model's; a file is given with a folder or an extension."""
    from stif_core.paths import checkpoint_path, package_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "stif_lite_full").write_text("not weights")
    (tmp_path / "mine").write_text("not weights")
    assert checkpoint_path("stif_lite_full").parent == package_path("weights")
    assert checkpoint_path("./stif_lite_full").resolve() == tmp_path / "stif_lite_full"
    with pytest.raises(FileNotFoundError, match="'mine' is no shipped model's name .* give ./mine"):
        checkpoint_path("mine")
