"""Experiment: NanoTrack v2's score map as a distillation target for STIF's classification head.

Trains the shipped recipe (``configs/lite.json``) on all folds of the train split but one, with one more loss
term: the binary cross-entropy between STIF's classification logits and NanoTrack v2's foreground probability at
the same image points, on the query crop of every training sample that holds the target (on a negative the
teacher still scores its best match high: median peak 0.79 on 40 negatives against 1.00 on 160 positives). The
teacher runs on the sample's own crops: its 127-pixel template is the centre half of the initial memory crop (the
target at half the template's side, as NanoTrack crops it), its 255-pixel search the query crop resized (the
target at a quarter of the side in both); its peak lies a median 5.3 pixels, under a cell, from the target's
centre on 160 positive samples. Validation loss and checkpoint selection stay Eq. 12's (the term is added only
where gradients flow). ``--check`` prints those figures.

    python experiments/distill_nanotrack.py --fold 2 --out runs/distill_f2 --check
    python experiments/distill_nanotrack.py --fold 2 --out runs/distill_f2 [--weight 0.5] [--steps 600]
    python -m stif_core eval --split train:fold-2-of-4 --checkpoint runs/distill_f2/best.safetensors \
        --engine onnx --out runs/eval_distill_f2

Compared with the same recipe, seed and fold without the term (``python -m stif_core crossval --config
configs/lite.json --steps 600 --fold 2 --out runs/cv``, its ``lite_f2``), tracked on the same 13 held-out
sequences: 0.592 AUC without; weight 0.5, 0.552 (paired -0.041 [-0.116, +0.018]); weight 0.1, 0.552 (-0.040
[-0.107, +0.004]). Not adopted: docs/design.md, section 10.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F

import stif_core.train as train
from stif_core.data.crops import CONTEXT
from stif_core.losses import assign_targets, batch_forward, stif_loss
from stif_core.paths import package_path

TEMPLATE, SEARCH, STRIDE, CELLS = 127, 255, 16, 16  # NanoTrack v2's crops, stride and score map


def symbolic_session(path) -> ort.InferenceSession:
    """An ONNX Runtime session of ``path`` with its inputs' height and width left free (the net is convolutional)."""
    model = onnx.load(str(path))
    for tensor in model.graph.input:
        for d in tensor.type.tensor_type.shape.dim[2:]:
            d.dim_param = "hw"
        tensor.type.tensor_type.shape.dim[0].dim_param = "batch"
    for tensor in model.graph.output:
        for d in tensor.type.tensor_type.shape.dim:
            d.dim_param = "free"
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # the graph's stored value shapes are the 255 crop's: a warning per template
    return ort.InferenceSession(model.SerializeToString(), options)


class Teacher:
    """NanoTrack v2 on a sample's crops: its foreground probability at STIF's cell centres, (B, H*W)."""

    def __init__(self, crop_size: int, centers: torch.Tensor):
        folder = package_path("weights", "peers", "nanotrack-v2")
        self.backbone = symbolic_session(folder / "nanotrack_backbone_sim.onnx")
        head = onnx.load(str(folder / "nanotrack_head_sim.onnx"))
        self.head = ort.InferenceSession(head.SerializeToString())
        self.crop_size = crop_size
        # a STIF cell centre p (crop pixels) -> NanoTrack's map index: the search is the crop scaled by 255/S, and
        # map cell j sits at (j - 8) * 16 pixels from the search centre (OpenCV's TrackerNano grid)
        u = (centers.double() * SEARCH / crop_size - (SEARCH - 1) / 2) / STRIDE + CELLS / 2  # (HW, 2)
        self.grid = (u / (CELLS - 1) * 2 - 1).float()[None, None]  # (1, 1, HW, 2), x then y, for grid_sample

    def features(self, images: np.ndarray) -> np.ndarray:
        return self.backbone.run(None, {"input": images[:, ::-1].astype(np.float32)})[0]  # RGB -> BGR

    def __call__(self, initial: np.ndarray, query: np.ndarray) -> torch.Tensor:
        """``initial``, ``query``: (B, 3, S, S) uint8 RGB crops -> (B, H*W) probabilities."""
        s = self.crop_size
        half = s / CONTEXT  # the target's side in the crop is s / CONTEXT; the template holds twice that
        lo, hi = int(round((s - 1) / 2 - half)), int(round((s - 1) / 2 + half)) + 1
        template = np.stack([cv2.resize(c.transpose(1, 2, 0)[lo:hi, lo:hi], (TEMPLATE, TEMPLATE)).transpose(2, 0, 1)
                             for c in initial])  # (B, 3, 127, 127)
        search = np.stack([cv2.resize(c.transpose(1, 2, 0), (SEARCH, SEARCH)).transpose(2, 0, 1) for c in query])
        maps = []
        for z, x in zip(self.features(template), self.features(search)):  # (48, 8, 8), (48, 16, 16)
            cls = self.head.run(None, {"input1": z[None], "input2": x[None]})[0]  # (1, 2, 16, 16)
            maps.append(torch.from_numpy(cls).softmax(1)[:, 1:])  # (1, 1, 16, 16)
        fg = torch.cat(maps)  # (B, 1, 16, 16)
        sampled = F.grid_sample(fg, self.grid.expand(len(fg), -1, -1, -1), align_corners=True)  # (B, 1, 1, HW)
        return sampled.flatten(1)  # (B, HW)


class DistilledSamples(train.TrackingSamples):
    """Training samples with the teacher's map of each query crop (``"teacher"``)."""

    centers: torch.Tensor | None = None

    def __getitem__(self, k: int) -> dict:
        item = super().__getitem__(k)
        if not hasattr(self, "teacher"):  # one per loader process
            self.teacher = Teacher(self.crop_size, self.centers)
        item["teacher"] = self.teacher(item["memory_images"][:1].numpy(), item["query_image"][None].numpy())[0]
        return item


def distilled_loss(weight: float):
    """``losses.batch_loss`` plus ``weight`` times the BCE against the teacher's map, summed over cells and divided
    by the positive cells as the focal term is; the added term only where gradients flow (training steps)."""

    def batch_loss(net, batch, centers, lambda_reg=1.0, lambda_ctr=1.0, autocast=False, trunk=None):
        dev = centers.device
        out = batch_forward(net, batch, dev, autocast, trunk)
        targets = assign_targets(batch["query_box"].to(dev), centers, batch["positive"].to(dev))
        terms = stif_loss(out.cls.float(), out.ctr.float(), out.reg.float(), targets, lambda_reg, lambda_ctr)
        if "teacher" in batch and torch.is_grad_enabled():
            n_pos = (targets.cls > 0).sum().clamp(min=1).float()
            rows = batch["positive"].to(dev)  # (B,): the teacher always finds a best match, absent or not
            terms["distill"] = F.binary_cross_entropy_with_logits(
                out.cls.float().flatten(1)[rows], batch["teacher"].to(dev)[rows], reduction="sum") / n_pos
            terms["loss"] = terms["loss"] + weight * terms["distill"]
        return terms

    return batch_loss


def check_teacher(cfg, n: int = 200) -> None:
    """Print where the teacher's peak lies against the target's centre on ``n`` samples of the held-out fold."""
    from stif_core import build_model

    model = build_model(cfg.preset, cfg.variant, pretrained=False, **cfg.model)
    samples = train.TrackingSamples(train.training_sequences(cfg), train.sampling_config(cfg), length=n, seed=5,
                                    model=model.cfg)
    teacher = Teacher(model.cfg.crop_size, model.centers)
    distance, peaks = [], {True: [], False: []}
    for item in (samples[k] for k in range(n)):
        fg = teacher(item["memory_images"][:1].numpy(), item["query_image"][None].numpy())[0]  # (HW,)
        box = item["query_box"].numpy()
        peaks[bool(item["positive"])].append(float(fg.max()))
        if item["positive"]:
            distance.append(np.linalg.norm(model.centers[int(fg.argmax())].numpy() - (box[:2] + box[2:]) / 2))
    print(f"{len(distance)} positives: the teacher's peak a median {np.median(distance):.1f} px from the target's "
          f"centre, {np.mean(np.array(distance) < 16):.0%} within 16 px; median peak {np.median(peaks[True]):.2f}, "
          f"on {len(peaks[False])} negatives {np.median(peaks[False]):.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fold", type=int, required=True)
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--weight", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root")
    p.add_argument("--out", required=True)
    p.add_argument("--check", action="store_true", help="only print where the teacher's peak lies (held-out fold)")
    args = p.parse_args()
    recipe = Path(__file__).resolve().parents[1] / "configs" / "lite.json"
    cfg = train.TrainConfig.load(recipe, split=f"train:except-fold-{args.fold}-of-{args.folds}",
                                 steps=args.steps, seed=args.seed, out=args.out, data_root=args.data_root)
    if args.check:
        return check_teacher(replace(cfg, split=f"train:fold-{args.fold}-of-{args.folds}"))
    train.TrackingSamples = DistilledSamples  # the trainer's samples (and its probes, whose term is left out)
    train.batch_loss = distilled_loss(args.weight)
    trainer = train.Trainer(cfg)
    DistilledSamples.centers = trainer.model.centers.cpu()
    print(trainer.fit())


if __name__ == "__main__":
    main()
