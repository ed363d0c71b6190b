"""Data readers on real sequences and on small fixtures in each published layout; bad input."""
import json

import numpy as np
import pytest
from PIL import Image

from stif_core.data.crops import CropWindow, box_mask, crop, window_around, xywh_to_xyxy
from stif_core.data.sequences import (
    AnnotationError,
    FrameError,
    default_data_root,
    detect_layout,
    frame_paths,
    load_sequences,
    load_split,
    open_dataset,
    read_otb_sequence,
)
from stif_core.data.synthetic import synthetic_clip


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


@pytest.mark.data
def test_real_sequences_and_splits():
    val = load_split("val")
    assert val == ["crossing", "deer", "dragonbaby", "jogging-1", "jogging-2", "faceocc1", "woman", "car1",
                   "lasot-airplane-1"]
    assert not set(val) & set(load_split("train"))
    dog, girl = load_sequences(["dog1", "girl"])
    assert len(dog) == 1350 and dog.boxes.shape == (1350, 4)
    frame = dog.frame(0)  # a grayscale JPEG
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
    assert np.array_equal(frame[..., 0], frame[..., 1])
    assert girl.frame(499).shape == (96, 128, 3)


@pytest.mark.data
@pytest.mark.parametrize("name, shape", [("crossing", (240, 360, 3)), ("freeman1", (240, 360, 3))])
def test_real_frames_match_their_ground_truth(name, shape):
    (seq,) = load_sequences([name])
    assert len(seq.frames) == len(seq.boxes) and seq.absent is None  # OTB marks no absence
    for i in (0, len(seq) // 2, len(seq) - 1):
        assert seq.frame(i).shape == shape
    x, y, w, h = seq.boxes.T
    assert (w > 0).all() and (h > 0).all() and (x + w <= shape[1] + 1).all() and (y + h <= shape[0] + 1).all()


@pytest.mark.data
def test_cross_validation_folds_partition_a_split():
    train = load_split("train")
    folds = [load_split(f"train:fold-{i}-of-4") for i in range(4)]
    assert sorted(sum(folds, [])) == sorted(train)  # every sequence in exactly one fold
    assert [len(f) for f in folds] == [13, 13, 13, 13]
    for i, held in enumerate(folds):
        rest = load_split(f"train:except-fold-{i}-of-4")
        assert not set(rest) & set(held) and sorted(rest + held) == sorted(train)
    assert folds[1][:2] == sorted(train)[1:6:4]  # dealt from the sorted names, independent of the file's order
    for bad in ("train:fold-4-of-4", "train:fold-0-of-1", "train:fold-0-of-99", "train:fold-0-of-0"):
        with pytest.raises(ValueError, match="a fold I of K needs K from 2 to 52"):
            load_split(bad)
    for bad in ("train:fold-01-of-4", "train:fold-\u0661-of-4", "train:fold-0-of-2:fold-0-of-2" * 2000):
        with pytest.raises(ValueError, match="unknown split"):  # one spelling per fold; no nesting
            load_split(bad)


def test_a_ground_truth_far_longer_than_the_frames_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    """A 3-frame sequence with 200,000 box lines: refused by its size, without one line parsed."""
    import stif_core.data.sequences as sequences

    folder = write_frames(tmp_path / "huge", 3)
    write_lines(folder / "groundtruth.txt", ["5,5,10,10"] * 200_003)
    monkeypatch.setattr(sequences, "token_lines", lambda *a: pytest.fail("the file was parsed"))
    with pytest.raises(AnnotationError, match=r"groundtruth.txt is 2,000,030 bytes for 3 frames"):
        read_otb_sequence(folder)


@pytest.mark.parametrize("splits, message", [
    ({"train": ["a", "b", "a"], "val": ["c"]}, "lists \\['a'\\] more than once"),
    ({"train": ["a"], "val": ["c"], "x:fold-0-of-2": ["b"]}, "hold no ':'")])
def test_a_split_repeating_a_name_or_named_like_a_fold_is_refused(tmp_path, splits, message):
    (tmp_path / "splits.json").write_text(json.dumps(splits))
    (tmp_path / "seqs").mkdir()
    with pytest.raises(ValueError, match=message):
        load_split("train:fold-0-of-2" if "a" in splits["train"][1:] else "train", tmp_path / "seqs")


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


def test_otb_separators_mixed_in_one_file_and_trailing_blank_lines(tmp_path):
    seq_dir = tmp_path / "Jumping"
    write_frames(seq_dir / "img", 3, [f"{i:04d}.jpg" for i in range(1, 4)])
    (seq_dir / "groundtruth_rect.txt").write_text("1,2,10,12\r\n3\t4\t10\t12\r\n5 6, 10  12\r\n\r\n\n")
    seq = read_otb_sequence(seq_dir)
    np.testing.assert_array_equal(seq.boxes, [[1, 2, 10, 12], [3, 4, 10, 12], [5, 6, 10, 12]])


def test_otb_split_from_splits_json_beside_the_root(tmp_path):
    root = tmp_path / "sequences"
    for name in ("a", "b"):
        write_frames(root / name, 2)
        write_lines(root / name / "groundtruth.txt", ["1,1,5,5"] * 2)
    (tmp_path / "splits.json").write_text('{"train": ["b"], "val": ["a"]}')
    assert detect_layout(root) == "otb"
    assert [s.name for s in open_dataset(root, split="train")] == ["b"]
    assert [s.name for s in open_dataset(root)] == ["a", "b"]
    with pytest.raises(ValueError, match="unknown split 'test'"):
        open_dataset(root, split="test")
    (tmp_path / "splits.json").write_text('{"train": ["b", "c"], "val": ["a"]}')  # c: no such folder
    for split in ("train", "train:fold-1-of-2"):
        with pytest.raises(ValueError, match=r"\['c'\] in .*sequences \(listed by split 'train' of .*splits.json\)"):
            open_dataset(root, split=split)


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


@pytest.mark.parametrize("names, message", [
    (["1.jpg", "2.jpg", "last.jpg"], "mixes numbered frames"),
    (["1.jpg", "01.jpg", "2.jpg"], "two frames numbered 1: 01.jpg and 1.jpg"),
    (["1.jpg", "1.png", "2.jpg"], "two frames numbered 1: 1.jpg and 1.png"),
    (["1.jpg", "30000000.jpg"], r"2 frames numbered from 1 to 30000000, most numbers missing \(the first: 2\)"),
])
def test_frames_of_unknown_order_are_refused_naming_them(tmp_path, names, message):
    write_frames(tmp_path / "f", len(names), names)
    with pytest.raises(FrameError, match=message):
        frame_paths(tmp_path / "f")


def test_named_frames_sort_with_their_numbers_read_as_numbers(tmp_path):
    write_frames(tmp_path / "f", 3, ["frame_10.jpg", "frame_2.jpg", "frame_1.jpg"])
    assert [p.name for p in frame_paths(tmp_path / "f")] == ["frame_1.jpg", "frame_2.jpg", "frame_10.jpg"]


def test_got10k_list_entries_are_names_and_sequence_names_are_unique(tmp_path):
    """Results are stored by sequence name: two sequences of one name would overwrite each other's."""
    write_frames(tmp_path / "val" / "a" / "seq", 2)
    write_lines(tmp_path / "val" / "a" / "seq" / "groundtruth.txt", ["1,1,10,10"] * 2)
    write_lines(tmp_path / "val" / "list.txt", ["a/seq"])
    with pytest.raises(ValueError, match=r"list.txt: entry 'a/seq' is not a valid name"):
        open_dataset(tmp_path, "got10k", split="val")
    (tmp_path / "val" / "a" / "seq").rename(tmp_path / "val" / "seq")
    write_lines(tmp_path / "val" / "list.txt", ["seq", "seq"])
    with pytest.raises(ValueError, match="two got10k sequences are named 'seq'"):
        open_dataset(tmp_path, "got10k", split="val")
    write_frames(tmp_path / "lasot" / "cat" / "cat-1" / "img", 2)
    write_lines(tmp_path / "lasot" / "cat" / "cat-1" / "groundtruth.txt", ["1,1,10,10"] * 2)
    write_frames(tmp_path / "lasot" / "dog" / "cat-1" / "img", 2)
    write_lines(tmp_path / "lasot" / "dog" / "cat-1" / "groundtruth.txt", ["1,1,10,10"] * 2)
    with pytest.raises(ValueError, match="two lasot sequences are named 'cat-1'"):
        open_dataset(tmp_path / "lasot", "lasot")


def test_got10k_list_txt_order_and_every_split(tmp_path):
    for name in ("GOT-10k_Val_000002", "GOT-10k_Val_000001"):
        write_frames(tmp_path / "val" / name, 2)
        write_lines(tmp_path / "val" / name / "groundtruth.txt", ["1,1,10,10"] * 2)
    write_lines(tmp_path / "val" / "list.txt", ["GOT-10k_Val_000002", "GOT-10k_Val_000001"])
    write_frames(tmp_path / "test" / "GOT-10k_Test_000001", 2)
    write_lines(tmp_path / "test" / "GOT-10k_Test_000001" / "groundtruth.txt", ["1,1,10,10"])
    assert [s.name for s in open_dataset(tmp_path, split="val")] == ["GOT-10k_Val_000002", "GOT-10k_Val_000001"]
    assert len(open_dataset(tmp_path)) == 3
    with pytest.raises(ValueError, match="unknown GOT-10k split 'dev'"):
        open_dataset(tmp_path, "got10k", split="dev")


def make_got10k(tmp_path, boxes, absence=None, n_frames=3):
    seq_dir = tmp_path / "train" / "GOT-10k_Train_000001"
    write_frames(seq_dir, n_frames)
    write_lines(seq_dir / "groundtruth.txt", boxes)
    if absence is not None:
        write_lines(seq_dir / "absence.label", absence)
    return seq_dir


@pytest.mark.parametrize("boxes, absence, file, message", [
    (["1,1,10,10"], ["0", "0", "0"], "groundtruth.txt", "has 1 boxes for 3 frames"),  # only test may hold 1
    (["1,1,10,10", "0,0,0,0", "1,1,10,10"], ["0", "0", "0"], "groundtruth.txt", "line 2: .* zero or negative"),
    (["0,0,0,0", "1,1,10,10", "1,1,10,10"], ["1", "0", "0"], "groundtruth.txt", "line 1: .* zero or negative"),
    (["1,1,10,10"] * 3, ["0", "x", "0"], "absence.label", "line 2: 'x' is not"),
    (["1,1,10,10"] * 3, ["0", "0"], "absence.label", "has 2 labels for 3 frames"),
])
def test_bad_got10k_annotations_name_the_file(tmp_path, boxes, absence, file, message):
    seq_dir = make_got10k(tmp_path, boxes, absence)
    with pytest.raises(AnnotationError, match=message) as err:
        open_dataset(tmp_path, split="train")
    assert str(seq_dir / file) in str(err.value)


def test_lasot_out_of_view_and_class_split(tmp_path):
    for cls in ("bear", "cat"):
        seq_dir = tmp_path / cls / f"{cls}-1"
        write_frames(seq_dir / "img", 2)
        write_lines(seq_dir / "groundtruth.txt", ["1,1,10,10", "nan,nan,nan,nan"])
        write_lines(seq_dir / "out_of_view.txt", ["0,1"])
    (seq,) = open_dataset(tmp_path, "lasot", split="cat")
    assert seq.name == "cat-1" and seq.absent.tolist() == [False, True] and np.isnan(seq.boxes[1]).all()
    with pytest.raises(ValueError, match="unknown LaSOT class 'dog'.*'bear', 'cat'"):
        open_dataset(tmp_path, "lasot", split="dog")


def test_trackingnet_layout(tmp_path):
    chunk = tmp_path / "TRAIN_0"
    write_frames(chunk / "frames" / "vid_a", 11, [f"{k}.jpg" for k in range(11)])
    write_lines(chunk / "anno" / "vid_a.txt", [f"{k},1,10,10" for k in range(11)])
    (seq,) = open_dataset(tmp_path, split="TRAIN")
    assert [p.name for p in seq.frames][:3] == ["0.jpg", "1.jpg", "2.jpg"] and seq.frames[-1].name == "10.jpg"
    assert seq.boxes[10, 0] == 10  # frame k pairs with annotation line k (numeric, not text, order)
    test = tmp_path / "TEST"
    write_frames(test / "frames" / "vid_b", 3, [f"{k}.jpg" for k in range(3)])
    write_lines(test / "anno" / "vid_b.txt", ["2,2,8,8"])
    (t,) = open_dataset(tmp_path, "trackingnet", split="test")
    assert t.name == "vid_b" and len(t) == 3 and np.isnan(t.boxes[1:]).all()
    assert len(open_dataset(tmp_path)) == 2


def test_unknown_layout_and_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no known dataset layout"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(ValueError, match="unknown layout"):
        open_dataset(tmp_path, layout="vot")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        open_dataset(tmp_path / "nowhere")


@pytest.mark.parametrize("layout, split, message", [
    ("got10k", "val", "is not a GOT-10k folder: it has no val/ split folder"), ("got10k", None, "no got10k sequences"),
    ("lasot", None, "no lasot sequences"), ("trackingnet", None, "holds no TrackingNet chunk folders")])
def test_a_folder_of_another_layout_is_one_line_naming_it(tmp_path, layout, split, message):
    make_otb(tmp_path, ["1,1,10,10"] * 3)
    with pytest.raises(ValueError, match=message):
        open_dataset(tmp_path, layout, split)


def make_otb(tmp_path, lines, n_frames=3):
    seq_dir = tmp_path / "seq"
    write_frames(seq_dir, n_frames)
    write_lines(seq_dir / "groundtruth.txt", lines)
    return seq_dir


@pytest.mark.parametrize("lines, message", [
    (["1,1,10,10", "1,1,10,10"], "has 2 boxes for 3 frames"),
    (["1,1,10,10"] * 4, "has 4 boxes for 3 frames"),
    (["1,1,10,10", "", "1,1,10,10", "1,1,10,10"], "line 2: empty line"),
    (["1,1,10,10", "nan,1,10,10", "1,1,10,10"], "line 2: box .* is not finite"),
    (["1,1,10,10", "1,1,0,10", "1,1,10,10"], "line 2: box .* zero or negative size"),
    (["1,1,10,10", "1,1,10,10", "1,1,-3,10"], "line 3: box .* zero or negative size"),
    (["0,0,1e300,10", "1,1,10,10", "1,1,10,10"], r"line 1: box .* is over 4 times the 40x30 frame"),
    (["1,1,10,10", "1,1,10,121", "1,1,10,10"], r"line 2: box .* is over 4 times the 40x30 frame"),
    (["1,1,10,10", "1,1,ten,10", "1,1,10,10"], "line 2: cannot read"),
    (["1,1,10,10", "1,1,10", "1,1,10,10"], "line 2: expected 4 numbers"),
    (["1,1,10,10", "1,1,1_0,10", "1,1,10,10"], "line 2: cannot read"),  # float() would read 1_0 as 10
    (["1,1,0.001,0.001", "1,1,10,10", "1,1,10,10"], "line 1: box .* under one pixel"),
])
def test_bad_ground_truth_names_file_and_line(tmp_path, lines, message):
    seq_dir = make_otb(tmp_path, lines)
    with pytest.raises(AnnotationError, match=message) as err:
        read_otb_sequence(seq_dir)
    assert str(seq_dir / "groundtruth.txt") in str(err.value)


def test_missing_and_corrupt_frames_name_the_file_and_index(tmp_path):
    seq = read_otb_sequence(make_otb(tmp_path, ["1,1,10,10"] * 4, n_frames=4))
    seq.frames[1].write_bytes(b"\xff\xd8\xff garbage, not a JPEG")
    with pytest.raises(FrameError, match=f"frame index 1: frame {seq.frames[1]} is corrupt"):
        seq.frame(1)
    data = seq.frames[2].read_bytes()
    seq.frames[2].write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(FrameError, match=f"frame index 2: frame {seq.frames[2]} is corrupt"):
        seq.frame(2)
    seq.frames[3].unlink()
    with pytest.raises(FrameError, match=f"frame index 3: frame {seq.frames[3]} is missing"):
        seq.frame(3)
    assert seq.frame(0).shape == (30, 40, 3)


def test_a_gap_in_the_numbering_is_a_missing_frame(tmp_path):
    seq_dir = make_otb(tmp_path, ["1,1,10,10"] * 3)
    (seq_dir / "00000002.jpg").unlink()
    seq = read_otb_sequence(seq_dir)
    assert len(seq) == 3 and seq.frames[1] == seq_dir / "00000002.jpg"
    with pytest.raises(FrameError, match=f"frame index 1: frame {seq_dir / '00000002.jpg'} is missing"):
        seq.frame(1)
    (seq_dir / "00000003.jpg").unlink()  # now the ground truth outnumbers the frames
    with pytest.raises(AnnotationError, match="has 3 boxes for 1 frames"):
        read_otb_sequence(seq_dir)


def test_data_root_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("STIF_DATA_ROOT", str(tmp_path))
    assert default_data_root() == tmp_path
    write_frames(tmp_path / "only", 2)
    write_lines(tmp_path / "only" / "groundtruth.txt", ["1,1,5,5"] * 2)
    with pytest.raises(ValueError, match=r"unknown sequence\(s\) \['other'\].*available: \['only'\]"):
        load_sequences(["other"])


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


BAR = (60, 60, 70)  # the occluding bar's colour


def test_synthetic_object_differs_from_the_background_behind_it():
    clip = synthetic_clip(60, size=(120, 160), seed=1)
    xyxy = xywh_to_xyxy(clip.boxes)  # (L, 4)
    visible = np.flatnonzero(~clip.absent)
    checked = 0
    for i in visible:
        cx, cy = (xyxy[i, :2] + xyxy[i, 2:]) / 2
        rx, ry = clip.boxes[i, 2:] / 4
        x0, y0, x1, y1 = int(cx - rx), int(cy - ry), int(cx + rx), int(cy + ry)  # the central half of the ellipse
        # a frame whose object lies elsewhere shows the (static) background behind that core
        apart = [j for j in visible if xyxy[j, 0] > x1 or xyxy[j, 2] < x0 or xyxy[j, 1] > y1 or xyxy[j, 3] < y0]
        if not apart:
            continue
        here, there = (clip.frames[k, y0:y1, x0:x1].astype(int) for k in (i, apart[0]))  # (h, w, 3) each
        unbarred = ~(here == BAR).all(-1) & ~(there == BAR).all(-1)  # (h, w) the bar may hide part of it
        if unbarred.sum() < 4:
            continue
        assert np.median(np.abs(here - there).max(-1)[unbarred]) > 10, f"frame {i}"
        checked += 1
    assert checked > len(visible) // 2


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


def test_eval_reads_other_layouts(tmp_path, capsys):
    from stif_core.__main__ import main

    for cls in ("bear", "cat"):
        seq_dir = tmp_path / "lasot" / cls / f"{cls}-1"
        write_frames(seq_dir / "img", 4, size=(96, 72))
        write_lines(seq_dir / "groundtruth.txt", ["30,20,24,20"] * 4)
    common = ["eval", "--data-root", str(tmp_path / "lasot"), "--layout", "lasot", "--baselines", "kcf"]
    assert main(common + ["--split", "cat", "--out", str(tmp_path / "a")]) == 0
    assert "kcf" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert list(metrics["kcf"]["per_sequence"]) == ["cat-1"]
    assert main(common + ["--sequences", "bear-1", "dog-1", "--out", str(tmp_path / "b")]) == 2
    assert "unknown sequence(s) ['dog-1']" in capsys.readouterr().err


def test_a_got10k_cover_label_beyond_8_is_refused(tmp_path):
    seq_dir = make_got10k(tmp_path, ["1,1,10,10"] * 3)
    write_lines(seq_dir / "cover.label", ["8", "9", "0"])
    with pytest.raises(AnnotationError, match="cover.label: label 9 is not a visible ratio 0-8"):
        open_dataset(tmp_path, split="train")
