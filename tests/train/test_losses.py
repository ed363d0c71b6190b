"""Eq. 12 on a small hand-made target; target assignment."""
import math

import numpy as np
import torch

from stif_core.losses import assign_targets, centerness, stif_loss
from stif_core.model.head import cell_centers

CENTERS = cell_centers(3, 10, 8)  # cells at 10, 18, 26 on both axes


def test_assignment_is_strictly_inside_and_centerness_by_hand():
    t = assign_targets(torch.tensor([[10.0, 12.0, 30.0, 30.0]]), CENTERS)
    # x = 10 lies on the box's left edge: not strictly inside; y = 10 is above the box
    expected = np.array([[0, 0, 0], [0, 1, 1], [0, 1, 1]], dtype=np.float32).flatten()
    np.testing.assert_array_equal(t.cls[0].numpy(), expected)
    cell = 4  # (18, 18): l = 8, t = 6, r = 12, b = 12
    np.testing.assert_allclose(t.reg[0, cell].numpy(), [8, 6, 12, 12])
    assert math.isclose(float(t.ctr[0, cell]), math.sqrt(8 / 12 * 6 / 12), rel_tol=1e-6)
    assert math.isclose(float(centerness(torch.tensor([4.0, 4.0, 4.0, 4.0]))), 1.0)
    assert float(t.ctr[0, 0]) == 0 and float(t.reg[0, 0].abs().sum()) == 0


def test_negative_pairs_have_no_positive_cell():
    t = assign_targets(torch.tensor([[10.0, 12.0, 30.0, 30.0]] * 2), CENTERS, torch.tensor([True, False]))
    assert t.cls[0].sum() == 4 and t.cls[1].sum() == 0


def test_loss_terms_by_hand():
    t = assign_targets(torch.tensor([[12.0, 12.0, 30.0, 30.0]]), CENTERS)  # 4 positives
    cls = torch.zeros(1, 1, 3, 3)  # p = 0.5 everywhere
    ctr = torch.zeros(1, 1, 3, 3)
    reg = torch.full((1, 4, 3, 3), 8.0)  # every cell predicts a 16 x 16 box centred on itself
    terms = stif_loss(cls, ctr, reg, t, lambda_reg=2.0, lambda_ctr=3.0)
    ln2 = math.log(2)
    focal = (4 * 0.75 * 0.25 * ln2 + 5 * 0.25 * 0.25 * ln2) / 4
    assert math.isclose(float(terms["cls"]), focal, rel_tol=1e-5)
    assert math.isclose(float(terms["ctr"]), ln2, rel_tol=1e-5)  # BCE at logit 0 is ln 2 whatever the target

    def iou(l, t_, r, b):  # predicted box (-8, -8, 8, 8) against (-l, -t, r, b)
        iw = min(8, r) + min(8, l)
        ih = min(8, b) + min(8, t_)
        inter = iw * ih
        return inter / (256 + (l + r) * (t_ + b) - inter)

    ious = [iou(6, 6, 12, 12), iou(14, 6, 4, 12), iou(6, 14, 12, 4), iou(14, 14, 4, 4)]
    reg_loss = -sum(math.log(v) for v in ious) / 4
    assert math.isclose(float(terms["reg"]), reg_loss, rel_tol=1e-5)
    assert math.isclose(float(terms["iou"]), sum(ious) / 4, rel_tol=1e-5)
    assert math.isclose(float(terms["loss"]), focal + 2 * reg_loss + 3 * ln2, rel_tol=1e-5)


def test_perfect_regression_has_zero_reg_loss():
    t = assign_targets(torch.tensor([[12.0, 12.0, 30.0, 30.0]]), CENTERS)
    reg = t.reg[0].T.reshape(1, 4, 3, 3).clamp(min=1.0)
    terms = stif_loss(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3), reg, t)
    assert float(terms["reg"]) < 1e-5 and math.isclose(float(terms["iou"]), 1.0, rel_tol=1e-5)
