"""Figures of the package that the notebooks and the model card show: what they draw, checked on their artists."""
import matplotlib

matplotlib.use("Agg")

from stif_core import build_model  # noqa: E402
from stif_core.lab import viz  # noqa: E402


def test_architecture_figure_greys_out_what_a_variant_lacks():
    def blocks(variant):
        ax = viz.architecture_figure(build_model("lite", variant, pretrained=False).cfg).axes[0]
        return {t.get_text().split("\n")[0]: t.get_color() == "gray" for t in ax.texts}

    full, baseline = blocks("full"), blocks("baseline")
    assert not any(full.values()) and "STIF fusion, eqs. 8-11" in full
    assert {k for k, grey in baseline.items() if grey} == {"TDE, eqs. 2-3", "SDE xi_1, eqs. 4-5", "SDE xi_2, eqs. 6-7"}
    assert "STMTrack read, eq. 8" in baseline


def test_validation_figure_stars_the_selected_checkpoint():
    rows = [{"step": s, "val_loss": v, "train_loss": t, "val_iou": 0.5, "train_iou": 0.6, "best": b}
            for s, v, t, b in [(0, 6.0, 6.1, True), (100, 1.5, 1.2, True), (200, 1.6, 1.0, False)]]
    loss_ax = viz.validation_figure(rows).axes[0]
    star = [line for line in loss_ax.lines if line.get_marker() == "*"]
    assert len(star) == 1 and list(star[0].get_xdata()) == [100] and list(star[0].get_ydata()) == [1.5]
