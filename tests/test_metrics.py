"""Our metrics against the official GOT-10k toolkit (PyPI got10k) on real tracker outputs; result files."""
import json
import types

import numpy as np
import pytest

from stif_core.data.sequences import default_data_root, load_sequences
from stif_core.evaluation.harness import evaluate, track_sequence
from stif_core.evaluation.metrics import evaluate_sequence, normalized_center_error, summarize
from stif_core.evaluation.results import read_otb, write_got10k, write_otb
from stif_core.tracking.baselines import make_baseline

got10k_otb = pytest.importorskip("got10k.experiments.otb")
got10k_got = pytest.importorskip("got10k.experiments.got10k")
from got10k.utils.metrics import rect_iou as toolkit_iou  # noqa: E402

needs_data = pytest.mark.skipif(default_data_root() is None, reason="no real sequences (set STIF_DATA_ROOT)")


def toolkit_scores(runs):
    """OTB curves via ExperimentOTB._calc_curves, GOT-10k AO/SR via ExperimentGOT10k._evaluate."""
    otb = types.SimpleNamespace(nbins_iou=21, nbins_ce=51)
    succ, prec, ious = [], [], []
    for boxes, gt, (w, h) in runs:
        boxes = boxes.copy()
        boxes[0] = gt[0]
        exp_iou, exp_ce = got10k_otb.ExperimentOTB._calc_metrics(otb, boxes, gt)
        s, p = got10k_otb.ExperimentOTB._calc_curves(otb, exp_iou, exp_ce)
        succ.append(s)
        prec.append(p)
        ious.append(toolkit_iou(boxes[1:].copy(), gt[1:].copy(), bound=(w, h)))
    ious = np.concatenate(ious)
    ao, sr50, _, _ = got10k_got.ExperimentGOT10k._evaluate(None, ious, np.array([]))
    succ, prec = np.mean(succ, 0), np.mean(prec, 0)
    return {"success": succ, "precision": prec, "auc": succ.mean(), "prec20": prec[20], "ao": ao,
            "sr50": sr50, "sr75": np.mean(ious > 0.75)}


@pytest.fixture(scope="module")
def tracked():
    """CSRT and KCF on the first 80 frames of two real val sequences (the targets move and drift)."""
    seqs = load_sequences(["crossing", "deer"])
    runs = {}
    for name in ("csrt", "kcf"):
        out = []
        for seq in seqs:
            seq.frames, seq.boxes = seq.frames[:80], seq.boxes[:80]
            boxes, _ = track_sequence(make_baseline(name), seq, progress=False)
            h, w = seq.frame(0).shape[:2]
            out.append((boxes, seq.boxes, (w, h)))
        runs[name] = out
    return runs


@needs_data
@pytest.mark.parametrize("name", ["csrt", "kcf"])
def test_metrics_match_the_official_toolkit(tracked, name):
    runs = tracked[name]
    ours = summarize({str(i): evaluate_sequence(b, g, size) for i, (b, g, size) in enumerate(runs)})
    ref = toolkit_scores(runs)
    np.testing.assert_allclose(ours["curves"]["success"], ref["success"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours["curves"]["precision"], ref["precision"], rtol=0, atol=1e-12)
    for key in ("auc", "prec20", "ao", "sr50", "sr75"):
        assert ours["overall"][key] == pytest.approx(ref[key], abs=1e-9), key
    assert 0 < ours["overall"]["ao"] < 1  # real outputs: neither perfect nor empty


def test_identical_and_disjoint_boxes():
    gt = np.array([[10, 10, 20, 30], [12, 11, 20, 30], [14, 12, 22, 30]], float)
    same = summarize({"s": evaluate_sequence(gt.copy(), gt, (100, 100))})["overall"]
    assert same["auc"] == pytest.approx(20 / 21) and same["ao"] == pytest.approx(1.0)  # IoU > 1 never holds
    assert same["prec20"] == 1.0 and same["norm_prec"] == 1.0
    far = gt.copy()
    far[1:, 0] += 60
    apart = summarize({"s": evaluate_sequence(far, gt, (100, 100))})["overall"]
    assert apart["ao"] == 0.0 and apart["sr50"] == 0.0


def test_normalized_precision_by_hand():
    gt = np.array([[0, 0, 10, 40.0]])
    pred = np.array([[3, 4, 10, 40.0]])  # centre moved by (3, 4): normalised (0.3, 0.1)
    assert normalized_center_error(pred, gt)[0] == pytest.approx(np.hypot(0.3, 0.1))


def test_got10k_metrics_clip_to_the_image_and_skip_absent_frames():
    gt = np.array([[0, 0, 10, 10], [90, 90, 20, 20], [5, 5, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10], [90, 90, 10, 10], [50, 50, 10, 10]], float)
    r = evaluate_sequence(pred, gt, (100, 100), absent=np.array([False, False, True]))
    assert r["ious"].tolist() == [1.0]  # frame 1: both clipped to (90, 90, 10, 10); frame 2 absent


def test_result_files_round_trip(tmp_path):
    boxes = np.array([[1.5, 2.25, 30.125, 40.0], [3, 4, 5, 6]])
    times = np.array([0.01, 0.02])
    write_otb(tmp_path / "otb", "seq", boxes, times)
    write_got10k(tmp_path / "got", "seq", boxes, times)
    b, t = read_otb(tmp_path / "otb", "seq")
    np.testing.assert_allclose(b, boxes)
    np.testing.assert_allclose(t, times)
    got = np.loadtxt(tmp_path / "got" / "seq" / "seq_001.txt", delimiter=",")
    np.testing.assert_allclose(got, boxes)
    assert not list(tmp_path.rglob("*.tmp"))


@needs_data
def test_evaluate_writes_metrics_and_resumes(tmp_path):
    seq = load_sequences(["skiing"])[0]
    seq.frames, seq.boxes = seq.frames[:25], seq.boxes[:25]
    calls = []

    def factory():
        calls.append(1)
        return make_baseline("kcf")

    first = evaluate({"kcf": factory}, [seq], tmp_path, progress=False)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["kcf"]["overall"]["auc"] == first["kcf"]["overall"]["auc"]
    assert set(first["kcf"]["overall"]) == {"auc", "prec20", "norm_prec", "ao", "sr50", "sr75", "fps"}
    again = evaluate({"kcf": factory}, [seq], tmp_path, progress=False)
    assert len(calls) == 1  # the second run read the result files back
    assert again["kcf"]["overall"]["ao"] == first["kcf"]["overall"]["ao"]


@needs_data
def test_baselines_keep_a_finite_box_when_the_target_leaves():
    seq = load_sequences(["skiing"])[0]
    tracker = make_baseline("kcf")
    frame = seq.frame(0)
    tracker.init(frame, seq.boxes[0])
    blank = np.zeros_like(frame)  # nothing left to track
    for _ in range(5):
        box = tracker.update(blank).box
        assert np.isfinite(box).all() and box[2] > 0 and box[3] > 0


def test_unknown_baseline_is_named():
    with pytest.raises(ValueError, match="csrt"):
        make_baseline("mosse")
