"""Data readers on real sequences and on small fixtures in each published layout; bad input."""
import numpy as np
import pytest
from PIL import Image

from stif_core.data.crops import CropWindow, box_mask, crop, window_around, xywh_to_xyxy
from stif_core.data.sequences import (
    AnnotationError,
    FrameError,
    default_data_root,
    load_sequences,
    load_split,
    open_dataset,
    read_otb_sequence,
)
from stif_core.data.synthetic import synthetic_clip

needs_data = pytest.mark.skipif(default_data_root() is None, reason="no real sequences (set STIF_DATA_ROOT)")


def write_frames(folder, n, names=None, size=(40, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = names or [f"{i + 1:08d}.jpg" for i in range(n)]
    for name in names:
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(folder / name)
    return folder


def write_lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


@needs_data
def test_real_sequences_and_splits():
    val = load_split("val")
    assert val == ["crossing", "deer", "dragonbaby", "jogging-1", "jogging-2"]
    assert not set(val) & set(load_split("train"))
    dog, girl = load_sequences(["dog1", "girl"])
    assert len(dog) == 1350 and dog.boxes.shape == (1350, 4)
    frame = dog.frame(0)  # a grayscale JPEG
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
    assert np.array_equal(frame[..., 0], frame[..., 1])
    assert girl.frame(499).shape == (96, 128, 3)


@needs_data
def test_unknown_sequence_lists_the_available_ones():
    with pytest.raises(ValueError, match="crossing"):
        load_sequences(["crosing"])


@pytest.mark.parametrize("sep", [",", "\t", " "])
def test_otb_own_layout_with_any_separator(tmp_path, sep):
    seq_dir = tmp_path / "Walker"
    write_frames(seq_dir / "img", 3, [f"{i:04d}.jpg" for i in range(1, 4)])
    write_lines(seq_dir / "groundtruth_rect.txt", [sep.join(["1", "2", "10", "12"])] * 3)
    seq = read_otb_sequence(seq_dir)
    assert seq.name == "Walker" and len(seq) == 3
    np.testing.assert_array_equal(seq.boxes[2], [1, 2, 10, 12])
    assert seq.frame(1).shape == (30, 40, 3)


def test_got10k_layout_train_and_test(tmp_path):
    train = tmp_path / "train" / "GOT-10k_Train_000001"
    write_frames(train, 3)
    write_lines(train / "groundtruth.txt", ["1,1,10,10", "0,0,0,0", "2,2,10,10"])
    write_lines(train / "absence.label", ["0", "1", "0"])
    write_lines(train / "cover.label", ["8", "0", "5"])
    test = tmp_path / "test" / "GOT-10k_Test_000001"
    write_frames(test, 4)
    write_lines(test / "groundtruth.txt", ["3,3,8,8"])
    (seq,) = open_dataset(tmp_path, split="train")
    assert seq.absent.tolist() == [False, True, False] and np.isnan(seq.boxes[1]).all()
    assert seq.attributes["cover"].tolist() == [8, 0, 5]
    (t,) = open_dataset(tmp_path, "got10k", split="test")
    assert len(t) == 4 and np.isfinite(t.boxes[0]).all() and np.isnan(t.boxes[1:]).all()


def test_lasot_layout(tmp_path):
    seq_dir = tmp_path / "airplane" / "airplane-1"
    write_frames(seq_dir / "img", 3)
    write_lines(seq_dir / "groundtruth.txt", ["1,1,10,10", "0,0,0,0", "2,2,10,10"])
    write_lines(seq_dir / "full_occlusion.txt", ["0,1,0"])
    write_lines(seq_dir / "out_of_view.txt", ["0,0,0"])
    write_lines(seq_dir / "nlp.txt", ["white airplane"])
    (seq,) = open_dataset(tmp_path)
    assert seq.name == "airplane-1" and seq.attributes["class"] == "airplane"
    assert seq.absent.tolist() == [False, True, False] and np.isnan(seq.boxes[1]).all()


def test_trackingnet_layout(tmp_path):
    chunk = tmp_path / "TRAIN_0"
    write_frames(chunk / "frames" / "vid_a", 11, [f"{k}.jpg" for k in range(11)])
    write_lines(chunk / "anno" / "vid_a.txt", [f"{k},1,10,10" for k in range(11)])
    (seq,) = open_dataset(tmp_path, split="TRAIN")
    assert [p.name for p in seq.frames][:3] == ["0.jpg", "1.jpg", "2.jpg"] and seq.frames[-1].name == "10.jpg"
    assert seq.boxes[10, 0] == 10  # frame k pairs with annotation line k (numeric, not text, order)


def make_otb(tmp_path, lines, n_frames=3):
    seq_dir = tmp_path / "seq"
    write_frames(seq_dir, n_frames)
    write_lines(seq_dir / "groundtruth.txt", lines)
    return seq_dir


@pytest.mark.parametrize("lines, message", [
    (["1,1,10,10", "1,1,10,10"], "has 2 boxes for 3 frames"),
    (["1,1,10,10", "nan,1,10,10", "1,1,10,10"], "line 2: box .* is not finite"),
    (["1,1,10,10", "1,1,0,10", "1,1,10,10"], "line 2: box .* zero or negative size"),
    (["1,1,10,10", "1,1,10,10", "1,1,-3,10"], "line 3: box .* zero or negative size"),
    (["1,1,10,10", "1,1,ten,10", "1,1,10,10"], "line 2: cannot read"),
    (["1,1,10,10", "1,1,10", "1,1,10,10"], "line 2: expected 4 numbers"),
])
def test_bad_ground_truth_names_file_and_line(tmp_path, lines, message):
    seq_dir = make_otb(tmp_path, lines)
    with pytest.raises(AnnotationError, match=message) as err:
        read_otb_sequence(seq_dir)
    assert str(seq_dir / "groundtruth.txt") in str(err.value)


def test_missing_and_corrupt_frames_name_the_file(tmp_path):
    seq = read_otb_sequence(make_otb(tmp_path, ["1,1,10,10"] * 3))
    seq.frames[1].write_bytes(b"\xff\xd8\xff garbage, not a JPEG")
    with pytest.raises(FrameError, match=f"{seq.frames[1]}.*corrupt"):
        seq.frame(1)
    seq.frames[2].unlink()
    with pytest.raises(FrameError, match=f"{seq.frames[2]}.*missing"):
        seq.frame(2)
    assert seq.frame(0).shape == (30, 40, 3)


def test_missing_data_root_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="STIF_DATA_ROOT"):
        load_sequences(data_root=tmp_path / "nowhere")


def test_synthetic_clip_is_deterministic_and_boxes_hold_the_object():
    a, b = synthetic_clip(40, seed=3), synthetic_clip(40, seed=3)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.frames, synthetic_clip(40, seed=4).frames)
    h, w = a.frames.shape[1:3]
    x, y, bw, bh = a.boxes.T
    assert (x >= 0).all() and (y >= 0).all() and (x + bw <= w + 1e-9).all() and (y + bh <= h + 1e-9).all()
    assert bw[-1] * bh[-1] > 1.3 * bw[0] * bh[0]  # the object grows
    assert a.absent.any() and not a.absent.all()  # the bar hides it for a while
    i = int(np.flatnonzero(~a.absent)[0])
    x0, y0, x1, y1 = xywh_to_xyxy(a.boxes[i]).astype(int)
    inside = a.frames[i, y0:y1, x0:x1].astype(float)
    assert np.abs(inside.mean((0, 1)) - a.frames[i].mean((0, 1))).max() > 5  # the object differs from the scene


def test_crop_maps_boxes_both_ways_and_pads_with_the_mean():
    frame = np.full((50, 60, 3), 100, np.uint8)
    frame[20:30, 25:35] = 250
    box = np.array([25.0, 20.0, 10.0, 10.0])
    window = window_around(box, 41)  # side 40 around (30, 25)
    patch = crop(frame, window)
    assert patch.shape == (41, 41, 3)
    inner = window.to_crop(xywh_to_xyxy(box))
    np.testing.assert_allclose(window.to_frame(inner), xywh_to_xyxy(box))
    assert patch[20, 20, 0] == 250  # the box centre lands at the crop centre
    far = crop(frame, CropWindow(0.0, 0.0, 40.0, 41))  # mostly outside the frame
    assert far[0, 0, 0] == round(frame[..., 0].mean())
    mask = box_mask(inner, 41)
    assert mask[20, 20] == 1 and mask[0, 0] == 0 and 60 < mask.sum() < 170
