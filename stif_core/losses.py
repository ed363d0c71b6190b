"""Target assignment and the training loss of eq. 12: L = L_cls + lambda1 L_reg + lambda2 L_ctr."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .model.head import encode_boxes


@dataclass
class Targets:
    """Dense targets on the H x W grid (row-major cells): cls (B, HW) in {0, 1}, reg (B, HW, 4) l, t, r, b,
    ctr (B, HW) centerness; all zero on negative cells."""

    cls: torch.Tensor
    reg: torch.Tensor
    ctr: torch.Tensor


def centerness(ltrb: torch.Tensor) -> torch.Tensor:
    """sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)) for (..., 4) offsets."""
    l, t, r, b = ltrb.unbind(-1)
    lr = torch.minimum(l, r) / torch.maximum(l, r).clamp(min=1e-6)
    tb = torch.minimum(t, b) / torch.maximum(t, b).clamp(min=1e-6)
    return (lr * tb).clamp(min=0).sqrt()


def assign_targets(boxes: torch.Tensor, centers: torch.Tensor, positive: torch.Tensor | None = None) -> Targets:
    """Cells strictly inside the query's ground-truth box are positive.

    boxes (B, 4) x1, y1, x2, y2 in crop pixels; centers (HW, 2); positive (B,) bool, False for negative
    pairs (the target is not in the query crop), which get no positive cell.
    """
    ltrb = encode_boxes(boxes, centers)  # (B, HW, 4)
    cls = (ltrb.min(-1).values > 0).float()  # (B, HW)
    if positive is not None:
        cls = cls * positive[:, None].float()
    reg = ltrb * cls[..., None]
    return Targets(cls, reg, centerness(ltrb.clamp(min=0)) * cls)


def sigmoid_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.75,
                       gamma: float = 2.0) -> torch.Tensor:
    """Summed focal loss (Lin et al.), alpha weighting the positives; logits and target (B, HW)."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    a_t = alpha * target + (1 - alpha) * (1 - target)
    return (a_t * (1 - p_t) ** gamma * ce).sum()


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching x1, y1, x2, y2 boxes, (..., 4) -> (...)."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[..., 2:] - x[..., :2]).clamp(min=0).prod(-1)  # noqa: E731
    return inter / (area(a) + area(b) - inter).clamp(min=1e-6)


def offsets_iou(pred_ltrb: torch.Tensor, target_ltrb: torch.Tensor) -> torch.Tensor:
    """IoU of boxes given as l, t, r, b offsets from the same cell, (P, 4) each -> (P,)."""
    as_box = lambda o: torch.cat([-o[:, :2], o[:, 2:]], 1)  # noqa: E731  cell at the origin
    return box_iou(as_box(pred_ltrb), as_box(target_ltrb))


def stif_loss(cls: torch.Tensor, ctr: torch.Tensor, reg: torch.Tensor, targets: Targets,
              lambda_reg: float = 1.0, lambda_ctr: float = 1.0) -> dict[str, torch.Tensor]:
    """Eq. 12 with the focal (cls), -log IoU (reg) and BCE (ctr) losses. cls, ctr (B, 1, H, W) logits;
    reg (B, 4, H, W) offsets. Each term is summed and divided by the number of positive cells (at least 1).
    Returns the terms, the total and the mean IoU of the positive cells' boxes (no gradient)."""
    cls = cls.flatten(1)  # (B, HW)
    ctr = ctr.flatten(1)  # (B, HW)
    reg = reg.flatten(2).transpose(1, 2)  # (B, HW, 4)
    pos = targets.cls > 0  # (B, HW)
    n_pos = pos.sum().clamp(min=1).float()
    iou = offsets_iou(reg[pos], targets.reg[pos])  # (P,)
    l_cls = sigmoid_focal_loss(cls, targets.cls) / n_pos
    l_ctr = F.binary_cross_entropy_with_logits(ctr[pos], targets.ctr[pos], reduction="sum") / n_pos
    l_reg = -torch.log(iou.clamp(min=1e-6)).sum() / n_pos
    total = l_cls + lambda_reg * l_reg + lambda_ctr * l_ctr
    mean_iou = iou.detach().mean() if iou.numel() else torch.zeros((), device=reg.device)
    return {"loss": total, "cls": l_cls, "reg": l_reg, "ctr": l_ctr, "iou": mean_iou}


def trunk_outputs(batch: dict, trunk, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The shared trunk's features of a batch's crops: memory (B, N, Ct, H', W') and query (B, Ct, H', W'). A feature
    cache's batch holds them (``memory_features``, ``query_features``); otherwise ``trunk`` runs on the crops, memory
    and query in one call."""
    if "query_features" in batch:
        return batch["memory_features"].to(device).float(), batch["query_features"].to(device).float()
    memory_images = batch["memory_images"].float()  # (B, N, 3, S, S)
    b, n = memory_images.shape[:2]
    crops = torch.cat([memory_images.flatten(0, 1), batch["query_image"].float()])  # (B*N + B, 3, S, S)
    features = trunk(crops).to(device)  # (B*N + B, Ct, H', W')
    return features[:b * n].unflatten(0, (b, n)), features[b * n:]


def batch_loss(net: torch.nn.Module, batch: dict, centers: torch.Tensor, lambda_reg: float = 1.0,
               lambda_ctr: float = 1.0, autocast: bool = False, trunk=None) -> dict[str, torch.Tensor]:
    """Forward a training batch (``TrackingSamples`` items, collated) through ``net``, assign the targets on
    ``centers`` and return eq. 12's terms (``stif_loss``). The trainer, its validation and the notebooks use it;
    ``autocast`` runs the forward in bf16 (CUDA). ``trunk``: a callable giving the shared trunk's features of
    crops (B, 3, S, S) -> (B, Ct, H', W') without gradient (a frozen trunk run elsewhere, ``model.ort``); a
    batch of a feature cache (``feature_cache.CachedSamples``) brings those features itself."""
    dev = centers.device
    out = batch_forward(net, batch, dev, autocast, trunk)
    targets = assign_targets(batch["query_box"].to(dev), centers, batch["positive"].to(dev))
    return stif_loss(out.cls.float(), out.ctr.float(), out.reg.float(), targets, lambda_reg, lambda_ctr)


def batch_forward(net: torch.nn.Module, batch: dict, dev: torch.device, autocast: bool = False, trunk=None):
    """``batch_loss``'s forward: the model's output on a training batch, from its crops or its trunk features."""
    masks = batch["memory_masks"].to(dev)  # (B, N, 1, S, S)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
        if trunk is None and "query_features" not in batch:
            return net(batch["memory_images"].to(dev).float(), masks, batch["query_image"].to(dev).float())
        memory_features, query_features = trunk_outputs(batch, trunk, dev)
        f_m = net.encode_memory(None, masks, memory_features)  # (B, N, C, H, W)
        return net.step(f_m, net.encode_query(None, features=query_features))
