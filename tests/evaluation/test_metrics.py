"""Our metrics against the official GOT-10k toolkit (PyPI ``got10k`` 0.1.3) on real tracker outputs: the
toolkit's own ``report`` reads the result files our harness wrote and must find the same scores. Also hand-checked
cases, result files, resuming, and the OpenCV baselines."""
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from stif_core.data.sequences import default_data_root, load_sequences
from stif_core.evaluation.harness import evaluate
from stif_core.evaluation.metrics import center_error, evaluate_sequence, normalized_center_error, rect_iou, summarize
from stif_core.evaluation.results import read_got10k, read_otb, write_got10k, write_otb
from stif_core.tracking.baselines import make_baseline

toolkit_otb = pytest.importorskip("got10k.experiments.otb", reason="the official toolkit (pip install got10k)")
toolkit_got = pytest.importorskip("got10k.experiments.got10k")
toolkit_metrics = pytest.importorskip("got10k.utils.metrics")

DATA_ROOT = default_data_root()
TRACKERS = ("csrt", "kcf")
N_FRAMES = 80  # of crossing and deer: the targets move, the trackers drift, boxes leave the frame now and then


class FakeDataset:
    """What the toolkit's ``report`` reads from its dataset: ``seq_names``, and by index or name
    (frames, ground truth) or, with ``return_meta``, (frames, ground truth, meta)."""

    def __init__(self, sequences, covers=None):
        self.sequences = sequences
        self.seq_names = [s.name for s in sequences]
        self.covers = covers or {}
        self.return_meta = False

    def __len__(self):
        return len(self.sequences)

    def __getitem__(self, key):
        seq = self.sequences[key if isinstance(key, int) else self.seq_names.index(key)]
        if not self.return_meta:
            return seq.frames, seq.boxes.copy()  # the toolkit clips its inputs in place
        h, w = seq.frame(0).shape[:2]
        cover = self.covers.get(seq.name, np.full(len(seq), 8))
        return seq.frames, seq.boxes.copy(), {"resolution": str((w, h)), "cover": cover}


def toolkit_report(kind, dataset, tracker_dir, tmp_path):
    """The official ``ExperimentOTB`` / ``ExperimentGOT10k`` report on the results under ``tracker_dir`` (the
    toolkit reads ``<result_dir>/<name>/...``, so result_dir = tracker_dir, name = "otb" or "got10k"); no plots."""
    cls = {"otb": toolkit_otb.ExperimentOTB, "got10k": toolkit_got.ExperimentGOT10k}[kind]
    exp = object.__new__(cls)  # skips the constructor, which would download or index a whole dataset
    exp.dataset, exp.result_dir, exp.report_dir = dataset, str(tracker_dir), str(tmp_path / "reports")
    exp.nbins_iou, exp.nbins_ce, exp.subset = 21, 51, "val"
    exp.plot_curves = lambda *args: None
    return exp.report([kind])[kind]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """CSRT and KCF through our harness on the first frames of two real val sequences."""
    if DATA_ROOT is None:
        pytest.skip("no real sequences")
    seqs = [s.head(N_FRAMES) for s in load_sequences(["crossing", "deer"])]
    out = tmp_path_factory.mktemp("eval")
    report = evaluate({t: lambda t=t: make_baseline(t) for t in TRACKERS}, seqs, out, progress=False)
    return seqs, out, report


def never():
    raise AssertionError("tracked again although complete results exist")


@pytest.mark.data
@pytest.mark.parametrize("tracker", TRACKERS)
def test_otb_scores_match_the_official_toolkit(run, tracker, tmp_path):
    seqs, out, report = run
    ours = report[tracker]
    ref = toolkit_report("otb", FakeDataset(seqs), out / tracker, tmp_path)
    np.testing.assert_allclose(ours["curves"]["success"], ref["overall"]["success_curve"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours["curves"]["precision"], ref["overall"]["precision_curve"], rtol=0, atol=1e-12)
    assert ours["overall"]["auc"] == pytest.approx(ref["overall"]["success_score"], abs=1e-9)
    assert ours["overall"]["prec20"] == pytest.approx(ref["overall"]["precision_score"], abs=1e-9)
    for name, r in ref["seq_wise"].items():
        assert ours["per_sequence"][name]["auc"] == pytest.approx(r["success_score"], abs=1e-9), name
        assert ours["per_sequence"][name]["prec20"] == pytest.approx(r["precision_score"], abs=1e-9), name
    assert 0 < ours["overall"]["auc"] < 1  # real outputs: neither perfect nor empty


@pytest.mark.data
@pytest.mark.parametrize("tracker", TRACKERS)
def test_got10k_scores_match_the_official_toolkit(run, tracker, tmp_path):
    seqs, out, report = run
    ours = report[tracker]
    ref = toolkit_report("got10k", FakeDataset(seqs), out / tracker, tmp_path)
    assert ours["overall"]["ao"] == pytest.approx(ref["overall"]["ao"], abs=1e-9)
    assert ours["overall"]["sr50"] == pytest.approx(ref["overall"]["sr"], abs=1e-9)
    assert ours["overall"]["sr75"] == pytest.approx(ref["overall"]["succ_curve"][75], abs=1e-9)  # IoU > 0.75
    for name, r in ref["seq_wise"].items():
        assert ours["per_sequence"][name]["ao"] == pytest.approx(r["ao"], abs=1e-9), name
        assert ours["per_sequence"][name]["sr50"] == pytest.approx(r["sr"], abs=1e-9), name
    assert 0 < ours["overall"]["ao"] < 1


@pytest.mark.data
@pytest.mark.parametrize("tracker", TRACKERS)
def test_box_measures_match_the_toolkit(run, tracker):
    seqs, out, _ = run
    for seq in seqs:
        boxes, _ = read_otb(out / tracker / "otb", seq.name)
        assert np.isfinite(boxes).all() and (boxes[:, 2:] > 0).all()
        np.testing.assert_allclose(rect_iou(boxes, seq.boxes), toolkit_metrics.rect_iou(boxes, seq.boxes),
                                   rtol=0, atol=1e-12)
        np.testing.assert_allclose(center_error(boxes, seq.boxes), toolkit_metrics.center_error(boxes, seq.boxes),
                                   rtol=0, atol=1e-12)


@pytest.mark.data
def test_hidden_frames_are_left_out_as_the_toolkit_does(run, tmp_path):
    """Frames marked absent (ground truth NaN there) or of GOT-10k cover 0 count in no metric; the toolkit's
    GOT-10k report leaves out cover-0 frames, and its OTB curves over the visible frames agree with ours."""
    seqs, out, _ = run
    seq = seqs[0]
    absent = np.zeros(len(seq), bool)
    absent[20:30] = True
    cover = np.full(len(seq), 8)
    cover[30:35] = 0  # fully occluded but not flagged absent
    boxes = np.where(absent[:, None], np.nan, seq.boxes)
    hidden = replace(seq, boxes=boxes, absent=absent, attributes={"cover": cover})
    # another annotation is other data: tracked again (KCF is deterministic), never the stored boxes re-scored
    ours = evaluate({"kcf": lambda: make_baseline("kcf")}, [hidden], tmp_path,
                    progress=False)["kcf"]["per_sequence"][seq.name]
    np.testing.assert_array_equal(read_otb(tmp_path / "kcf" / "otb", seq.name)[0], read_otb(out / "kcf" / "otb",
                                                                                            seq.name)[0])

    toolkit_cover = np.where(absent, 0, cover)
    ref = toolkit_report("got10k", FakeDataset([hidden], {seq.name: toolkit_cover}), tmp_path / "kcf", tmp_path)
    assert ours["ao"] == pytest.approx(ref["overall"]["ao"], abs=1e-9)
    assert ours["sr50"] == pytest.approx(ref["overall"]["sr"], abs=1e-9)

    visible = toolkit_cover > 0
    pred, _ = read_otb(tmp_path / "kcf" / "otb", seq.name)
    pred[0] = seq.boxes[0]
    otb = toolkit_otb.ExperimentOTB.__new__(toolkit_otb.ExperimentOTB)
    otb.nbins_iou, otb.nbins_ce = 21, 51
    succ, prec = otb._calc_curves(*otb._calc_metrics(pred[visible], seq.boxes[visible]))
    assert ours["auc"] == pytest.approx(succ.mean(), abs=1e-9)
    assert ours["prec20"] == pytest.approx(prec[20], abs=1e-9)


@pytest.mark.data
def test_evaluate_resumes_from_result_files_and_loses_nothing(run, tmp_path):
    seqs, out, report = run
    shutil.copytree(out, tmp_path, dirs_exist_ok=True)
    again = evaluate({t: never for t in TRACKERS}, seqs, tmp_path, progress=False)
    assert again == report  # exact: the files hold the very floats that were scored
    assert json.loads((tmp_path / "metrics.json").read_text()) == report
    assert set(report["csrt"]["overall"]) == {"auc", "prec20", "norm_prec", "ao", "sr50", "sr75", "fps"}

    cut = tmp_path / "kcf" / "otb" / f"{seqs[1].name}.txt"  # an interrupted write of an older kind
    cut.write_text("".join(cut.read_text().splitlines(keepends=True)[:10]))
    calls = []
    resumed = evaluate({"kcf": lambda: calls.append(1) or make_baseline("kcf")}, seqs, tmp_path, progress=False)
    assert len(calls) == 1  # only the incomplete sequence was tracked again
    assert resumed["kcf"]["per_sequence"][seqs[0].name] == report["kcf"]["per_sequence"][seqs[0].name]


@pytest.mark.data
def test_evaluate_never_writes_into_the_data_folder():
    seq = load_sequences(["deer"])[0]
    with pytest.raises(ValueError, match="data folder"):
        evaluate({"kcf": never}, [seq], DATA_ROOT / "results", progress=False)
    assert not (DATA_ROOT / "results").exists()


def test_identical_and_disjoint_boxes_by_hand():
    gt = np.array([[10, 10, 20, 30], [12, 11, 20, 30], [14, 12, 22, 30]], float)
    same = summarize({"s": evaluate_sequence(gt.copy(), gt, (100, 100))})["overall"]
    assert same["auc"] == pytest.approx(20 / 21)  # the threshold 1 is on the curve and IoU > 1 never holds
    assert (same["ao"], same["sr50"], same["sr75"], same["prec20"], same["norm_prec"]) == (1, 1, 1, 1, 1)
    far = gt.copy()
    far[1:, 0] += 60  # no overlap, centres 60 px apart (beyond 50)
    apart = summarize({"s": evaluate_sequence(far, gt, (100, 100))})["overall"]
    assert (apart["ao"], apart["sr50"], apart["sr75"]) == (0, 0, 0)  # GOT-10k leaves out the first frame
    assert apart["auc"] == pytest.approx(20 / 21 / 3)  # OTB counts it: 1 of 3 frames right
    assert apart["prec20"] == pytest.approx(1 / 3)


def test_normalized_precision_by_hand():
    gt = np.array([[0, 0, 10, 40.0], [0, 0, 10, 40.0]])
    pred = np.array([[0, 0, 10, 40.0], [3, 4, 10, 40.0]])  # centre moved by (3, 4): normalised (0.3, 0.1)
    assert normalized_center_error(pred, gt)[1] == pytest.approx(np.hypot(0.3, 0.1))
    curve = evaluate_sequence(pred, gt, (100, 100))["curves"]["norm_precision"]
    assert curve.shape == (51,) and curve[31] == 0.5 and curve[32] == 1.0  # 0.316 lies between 0.31 and 0.32


def test_got10k_metrics_clip_to_the_image_and_skip_absent_frames():
    gt = np.array([[0, 0, 10, 10], [90, 90, 20, 20], [5, 5, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10], [90, 90, 10, 10], [50, 50, 10, 10]], float)
    r = evaluate_sequence(pred, gt, (100, 100), absent=np.array([False, False, True]))
    assert r["ious"].tolist() == [1.0]  # frame 1: both clipped to (90, 90, 10, 10); frame 2 absent


def test_result_files_round_trip_exactly(tmp_path):
    boxes = np.array([[0.1, 1 / 3, 30.125, 1e-7], [-3, 4, 5, 6], [1e6 + 0.5, 2, 3, 4]])
    times = np.array([0.0123456789012345, 2e-5, 1.0])
    write_otb(tmp_path / "otb", "seq", boxes, times)
    write_got10k(tmp_path / "got", "seq", boxes, times)
    for b, t in (read_otb(tmp_path / "otb", "seq"), read_got10k(tmp_path / "got", "seq")):
        np.testing.assert_array_equal(b, boxes)
        np.testing.assert_array_equal(t, times)
    toolkit_read = np.loadtxt(tmp_path / "got" / "seq" / "seq_001.txt", delimiter=",")  # as the toolkit reads
    np.testing.assert_array_equal(toolkit_read, boxes)
    assert (tmp_path / "otb" / "times" / "seq_time.txt").is_file()
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.data
@pytest.mark.parametrize("tracker", TRACKERS)
def test_baselines_keep_a_finite_box_when_the_target_leaves(tracker):
    """A real frame slides right until the target and then everything has left it."""
    seq = load_sequences(["crossing"])[0]
    frame = seq.frame(0)  # (H, W, 3)
    width = frame.shape[1]
    t = make_baseline(tracker)
    t.init(frame, seq.boxes[0])
    for shift in range(10, width + 60, 20):
        moved = np.zeros_like(frame)
        moved[:, shift:] = frame[:, :max(width - shift, 0)]
        box = t.update(moved).box
        assert box.shape == (4,) and np.isfinite(box).all() and box[2] > 0 and box[3] > 0, (shift, box)
    assert seq.boxes[0, 0] + shift > width  # the target is out of the frame by now


def test_unknown_baseline_is_named():
    with pytest.raises(ValueError, match="'csrt', 'kcf'"):
        make_baseline("mosse")


def test_a_stored_result_that_is_not_finite_boxes_is_tracked_again_with_a_line(tmp_path, capsys):
    """A result file of the tool's layout holding a NaN row had been read back, scored NaN into metrics.json, and
    every later eval into that folder then failed reading it; it is now taken as absent, and said so."""
    from stif_core.data.synthetic import synthetic_clip

    seq = synthetic_clip(20, seed=2, name="clip")
    first = evaluate({"kcf": lambda: make_baseline("kcf")}, [seq], tmp_path, progress=False)
    path = tmp_path / "kcf" / "otb" / "clip.txt"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:5] + ["nan,nan,nan,nan\n"] + lines[6:]))
    calls = []
    again = evaluate({"kcf": lambda: calls.append(1) or make_baseline("kcf")}, [seq], tmp_path, progress=False)
    assert calls == [1] and again["kcf"]["per_sequence"]["clip"]["auc"] == first["kcf"]["per_sequence"]["clip"]["auc"]
    said = capsys.readouterr().out
    assert f"kcf/clip: the stored result cannot be used (result file {path}, line 6: not finite" in said
    assert np.isfinite(json.loads((tmp_path / "metrics.json").read_text())["kcf"]["overall"]["auc"])


@pytest.mark.data
def test_a_checkpoint_scored_on_its_own_training_sequences_is_noted():
    from stif_core.evaluation.trackers import trained_on

    biker, crossing = load_sequences(["biker", "crossing"])  # a train and a val sequence
    (line,) = trained_on(["stif_lite_full_s0"], [biker, crossing])
    assert "trained on 1 of the sequences scored here (biker)" in line and "not held-out" in line
    assert trained_on(["stif_lite_full_s0"], [crossing]) == []
