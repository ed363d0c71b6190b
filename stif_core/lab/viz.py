"""Plots shared by the notebooks: boxes over frames, maps over crops, curves."""
from __future__ import annotations

import cv2
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from ..files import atomic

COLORS = {"ground truth": "white", "stif-full": "red", "stif-baseline": "deepskyblue", "csrt": "lime",
          "kcf": "orange", "nanotrack": "magenta", "vittrack": "gold"}


def draw_boxes(ax, image: np.ndarray, boxes: dict[str, np.ndarray], title: str = "",
               dashed: tuple[str, ...] = ()) -> None:
    """An image with x, y, w, h boxes, one colour per label; the labels in ``dashed`` drawn dashed, so that a box
    drawn over another of nearly the same place leaves it visible."""
    ax.imshow(image)
    for k, (label, b) in enumerate(boxes.items()):
        color = COLORS.get(label, plt.cm.tab10(k))
        ax.add_patch(Rectangle(b[:2], b[2], b[3], fill=False, lw=1.8, ec=color, label=label,
                               ls="--" if label in dashed else "-"))
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def save_png(fig, path) -> None:
    """``fig`` written to ``path`` as a PNG (atomically, ``files.atomic``), at the suite's resolution."""
    with atomic(path) as tmp:
        fig.savefig(tmp, dpi=90, bbox_inches="tight", format="png")


MAP_CMAP = "viridis"  # perceptually uniform: equal steps of a value look like equal steps of colour


def overlay(ax, image: np.ndarray, heat: np.ndarray, title: str = "", alpha: float = 0.5,
            cmap: str = MAP_CMAP, vmin: float | None = None, vmax: float | None = None, colorbar: bool = True):
    """A (h, w) map resized bilinearly over an (H, W, 3) image, with its colour bar (``colorbar=False``: the caller
    draws one bar for several panels)."""
    ax.imshow(image)
    big = cv2.resize(np.asarray(heat, np.float32), image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    im = ax.imshow(big, cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax)
    if colorbar:
        plt.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return im


def map_panel(ax, heat: np.ndarray, title: str = "", cmap: str = MAP_CMAP, vmin=None, vmax=None) -> None:
    im = ax.imshow(heat, cmap=cmap, vmin=vmin, vmax=vmax)
    plt.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def curves_figure(report: dict, title: str = "") -> plt.Figure:
    """OTB-style success and precision plots of ``evaluate`` results, AUC and precision@20 in the legends."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for name, r in sorted(report.items(), key=lambda kv: -kv[1]["overall"]["auc"]):
        color = COLORS.get(name)
        a.plot(np.linspace(0, 1, 21), r["curves"]["success"], color=color,
               label=f"{name} [{r['overall']['auc']:.3f}]")
        b.plot(np.arange(51), r["curves"]["precision"], color=color, label=f"{name} [{r['overall']['prec20']:.3f}]")
    a.set(xlabel="overlap threshold", ylabel="success rate", title=f"Success plot {title}", ylim=(0, 1))
    b.set(xlabel="location error threshold (px)", ylabel="precision", title=f"Precision plot {title}", ylim=(0, 1))
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- feature maps

def pca_rgb(*maps: np.ndarray, percentile: float = 1.0) -> list[np.ndarray]:
    """(C, H, W) feature maps -> (H, W, 3) images: every cell projected on the first three principal components
    of all the maps' cells together (one shared basis, so colours compare across maps), stretched to [0, 1]."""
    cells = np.concatenate([np.asarray(m, np.float64).reshape(m.shape[0], -1).T for m in maps])  # (cells, C)
    centred = cells - cells.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)  # rows: principal directions
    proj = centred @ vt[:3].T  # (cells, 3)
    proj *= np.where((proj ** 3).sum(0) < 0, -1.0, 1.0)
    lo, hi = np.percentile(proj, percentile, 0), np.percentile(proj, 100 - percentile, 0)
    rgb = np.clip((proj - lo) / np.maximum(hi - lo, 1e-12), 0, 1)
    out, k = [], 0
    for m in maps:
        hw = m.shape[1] * m.shape[2]
        out.append(rgb[k:k + hw].reshape(m.shape[1], m.shape[2], 3))
        k += hw
    return out


def overlay_grid(ax, image: np.ndarray, heat: np.ndarray, offset: float, stride: int, title: str = "",
                 alpha: float = 0.5, cmap: str = MAP_CMAP, vmin: float | None = None, vmax: float | None = None,
                 interpolation: str = "bilinear", colorbar: bool = True):
    """An (h, w) or (h, w, 3) map of grid cells over its (S, S, 3) crop, cell (i, j) centred on crop pixel
    (offset + stride * j, offset + stride * i) as the head places it (``overlay`` stretches the grid over the
    whole crop instead); a colour bar beside a map of values, not an RGB one."""
    h, w = np.shape(heat)[:2]  # (h, w) or (h, w, 3)
    half = stride / 2
    ax.imshow(image)
    im = ax.imshow(np.asarray(heat, np.float32), cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax,
                   interpolation=interpolation,
                   extent=(offset - half, offset + (w - 1) * stride + half, offset + (h - 1) * stride + half,
                           offset - half))
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)
    if colorbar and np.ndim(heat) == 2:
        plt.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return im


def memory_columns(weights: list, slots: int) -> np.ndarray:
    """(L, slots) weights of each step's memory [initial, references oldest to newest] in fixed columns: the
    initial frame in column 0, the references right-aligned, so that the newest is always the last column while
    the memory fills up over the first frames."""
    rows = np.zeros((len(weights), slots))  # (L, slots)
    for row, w in zip(rows, weights):
        row[0] = w[0]
        row[slots - len(w) + 1:] = w[1:]
    return rows


def outline(ax, box_xyxy: np.ndarray, color: str = "white", lw: float = 1.5, label: str | None = None) -> None:
    """A box x1, y1, x2, y2 (in the pixels of the image already on ``ax``)."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=lw, ec=color, label=label))


# ---------------------------------------------------------------------------------------------- training

LOSS_TERMS = (("loss", "total", "black"), ("cls", "cls (focal)", "tab:blue"), ("reg", "reg (-log IoU)", "tab:orange"),
              ("ctr", "ctr (BCE)", "tab:green"))


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over the last ``window`` values (fewer at the start), same length as ``values``."""
    values = np.asarray(values, np.float64)
    if window <= 1:
        return values
    c = np.concatenate([[0.0], np.cumsum(values)])
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def training_figure(rows: list[dict], freeze_step: int | None = None, smooth: int = 1, title: str = "",
                    total_steps: int | None = None) -> plt.Figure:
    """Training log rows (``Trainer`` JSONL) as three panels: every loss term, the training IoU of the positive
    cells' boxes, the learning rate; ``smooth`` > 1 adds rolling means, ``freeze_step`` marks where the trunks
    start training."""
    step = np.array([r["step"] for r in rows])
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 3.8))
    raw_alpha = 0.25 if smooth > 1 else 1.0
    for ax, key, label, color in [(a, *term) for term in LOSS_TERMS] + [(b, "iou", None, "tab:purple")]:
        v = np.array([r[key] for r in rows])
        ax.plot(step, v, color=color, alpha=raw_alpha, lw=1, label=None if smooth > 1 else label)
        if smooth > 1:
            ax.plot(step, rolling_mean(v, smooth), color=color, lw=1.6, label=label)
    c.plot(step, [r["lr"] for r in rows], color="black")
    a.set(xlabel="step", ylabel="loss", title=f"loss terms {title}".strip())
    b.set(xlabel="step", ylabel="IoU", ylim=(0, 1), title=f"training IoU {title}".strip())
    c.set(xlabel="step", ylabel="learning rate", title="learning rate (head; trunks x 0.1 once free)")
    a.legend(fontsize=8)
    trains = freeze_step is not None and freeze_step < (total_steps or len(rows))  # a run that unfreezes its trunks
    for ax in (a, b, c):
        if trains:
            ax.axvline(freeze_step, color="gray", ls="--", lw=1)
        if total_steps is not None:
            ax.set_xlim(0, total_steps)
    if trains:
        b.text(freeze_step, 0.97, " trunks train", va="top", fontsize=8, color="gray")
    fig.tight_layout()
    return fig


def validation_figure(rows: list[dict], title: str = "") -> plt.Figure:
    """``validation.jsonl`` rows as two panels, loss and IoU on the trainer's val and train probes, the gap shaded
    and the selected checkpoint (lowest val loss) starred."""
    step = np.array([r["step"] for r in rows])
    best = max((r for r in rows if r["best"]), key=lambda r: r["step"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.8))
    for ax, key, label in ((a, "loss", "loss (eq. 12)"), (b, "iou", "IoU of positive cells' boxes")):
        val, train = np.array([r[f"val_{key}"] for r in rows]), np.array([r[f"train_{key}"] for r in rows])
        ax.plot(step, train, "o-", color="tab:blue", ms=3, label="train probe")
        ax.plot(step, val, "o-", color="tab:red", ms=3, label="val probe")
        ax.fill_between(step, train, val, color="gray", alpha=0.15, label="train/val gap")
        ax.plot(best["step"], best[f"val_{key}"], "*", color="black", ms=12, label=f"selected (step {best['step']})")
        ax.set(xlabel="step", ylabel=label, title=f"{label} {title}".strip())
    a.set_yscale("log")  # the untrained step 0 sits 4x above the rest
    b.set_ylim(0, 1)
    a.legend(fontsize=8)
    fig.tight_layout()
    return fig


def architecture_figure(cfg, memory_frames: int = 4) -> plt.Figure:
    """STIF's data flow for a model config: the memory and query rows, the fusion and the head, each block with
    its equations and the shape it gives (B = 1; N memory frames); blocks the variant lacks dashed and grey."""
    from ..model.backbone import TRUNKS

    n, c, h, s = memory_frames, cfg.channels, cfg.score_size, cfg.crop_size
    ct = TRUNKS[cfg.backbone].out_channels
    shared = cfg.mask_injection == "neck"  # one encoder for memory and query, the mask's term after it
    fusion = "STIF fusion, eqs. 8-11\nq2m + m2q, gated" if cfg.stif else "STMTrack read, eq. 8\nq2m over N frames"
    memory = [("memory crops + masks", f"({n}, 3, {s}, {s})", True),
              ("shared trunk" if shared else "memory trunk\nmask at the first conv", f"({n}, {ct}, H', W')", True),
              ("shared neck\n+ the mask's term" if shared else "memory neck", f"({n}, {c}, {h}, {h})", True),
              ("TDE, eqs. 2-3\nweights over T frames", f"({c}, {h}, {h})", cfg.ste),
              ("SDE xi_1, eqs. 4-5", f"({c}, {h}, {h})", cfg.ste)]
    query = [("query crop", f"(3, {s}, {s})", True),
             ("shared trunk" if shared else "query trunk", f"({ct}, H', W')", True),
             ("shared neck" if shared else "query neck", f"({c}, {h}, {h})", True),
             ("SDE xi_2, eqs. 6-7", f"({c}, {h}, {h})", cfg.sde_query)]
    fig, ax = plt.subplots(figsize=(15, 4.2))
    ax.set(xlim=(-0.6, 7.4), ylim=(-0.4, 2.4))
    ax.axis("off")

    def block(x, y, text, shape, on=True, color="#dbe9f6"):
        return ax.text(x, y, f"{text}\n{shape}", ha="center", va="center", fontsize=8.5,
                       color="black" if on else "gray",
                       bbox=dict(boxstyle="round,pad=0.4", fc=color if on else "white", ec="black" if on else "gray",
                                 ls="-" if on else "--"))

    def arrow(a, b):  # from the right edge of block a to the left edge of block b
        ax.annotate("", xy=(0, 0.5), xycoords=b, xytext=(1, 0.5), textcoords=a,
                    arrowprops=dict(arrowstyle="->", color="black", lw=1.2))

    ends = []
    for row, y, xs in ((memory, 2.0, [0, 1, 2, 3, 4]), (query, 0.0, [0, 1, 2, 4])):
        blocks = [block(x, y, *item) for x, item in zip(xs, row)]
        for a, b in zip(blocks, blocks[1:]):
            arrow(a, b)
        ends.append(blocks[-1])
    fused = block(5.4, 1.0, fusion, f"({2 * c}, {h}, {h})", color="#fde2c8")
    head = block(6.7, 1.0, "anchor-free head\ncls, ctr, reg", f"2 x (1, {h}, {h}), (4, {h}, {h})", color="#d9f2d9")
    for a in ends:
        arrow(a, fused)
    arrow(fused, head)
    notes = ["'shared': one module, drawn on both rows"] if shared else []
    notes += ["dashed: not in this variant"] if not all(on for *_, on in memory + query) else []
    ax.set_title(f"STIF, {cfg.variant} variant, {cfg.backbone} ({s} px crops, {h} x {h} cells, C = {c})"
                 + "".join(f"; {note}" for note in notes), fontsize=10)
    fig.tight_layout()
    return fig


def explorer(draw, **controls) -> None:
    """Widgets (name=widget) that redraw ``draw(**values)`` below them whenever one changes.

    Unlike ``interact`` it draws nothing when created (call ``draw`` with the defaults in the cell before): a
    callback writing into an Output widget while papermill or nbval executes the cell now and then hangs the run
    (jupyter/nbclient#312)."""
    from IPython.display import clear_output
    from ipywidgets import Output, VBox

    out = Output()

    def redraw(_change=None) -> None:
        with out:
            clear_output(wait=True)
            draw(**{name: widget.value for name, widget in controls.items()})
            plt.show()

    for widget in controls.values():
        widget.observe(redraw, names="value")
    show_widget(VBox([*controls.values(), out]), "interactive controls: in a running notebook they redraw the figure "
                                                   "above, drawn here at their default values")


def show_widget(widget, static: str) -> None:
    """Display ``widget`` with ``static`` as the text form that views without a widget manager show."""
    from IPython.display import display

    view = {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}
    display({"application/vnd.jupyter.widget-view+json": view, "text/plain": f"[{static}]"}, raw=True)
