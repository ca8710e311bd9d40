"""Training curves: metric names grouped into families, single-point metrics left out, PNG written."""
import pytest

from training.plots.training_curves import curve_families, metric_family, plot_training_curves


def test_metric_family_strips_split_and_granularity():
    assert metric_family("train/loss_step") == ("loss", "train (step)")
    assert metric_family("train/loss_epoch") == ("loss", "train (epoch)")
    assert metric_family("val/mntp_acc") == ("mntp_acc", "val")
    assert metric_family("val_auc") == ("auc", "val")
    assert metric_family("train_loss") == ("loss", "train")
    assert metric_family("first_loss") == ("first_loss", "first_loss")


def test_curve_families_keep_only_curves():
    families = curve_families({
        "train/loss_step": [(2, 0.5), (1, 0.9), (3, float("nan"))], "val/loss": [(10, 0.7), (20, 0.6)],
        "val/auc": [(10, 0.6)], "epoch": [(0, 0), (1, 1)], "train_seconds": [(0, 3.0)],
    })
    assert families == {"loss": {"train (step)": [(1, 0.9), (2, 0.5)], "val": [(10, 0.7), (20, 0.6)]}}


def test_plot_training_curves_writes_png(tmp_path):
    histories = {"train/loss_step": [(s, 1 / (s + 1)) for s in range(30)], "val/loss": [(10, 0.2), (20, 0.1)],
                 "val/mntp_acc": [(10, 0.3), (20, 0.5)], "val/ncp_acc": [(10, 0.3), (20, 0.4)],
                 "train_loss": [(0, 1.0), (1, 0.5)]}
    path = plot_training_curves(histories, tmp_path / "curves" / "training_curves.png", "news_encoder run abc")
    data = path.read_bytes()
    assert data[:4] == b"\x89PNG" and len(data) > 2000


def test_plot_training_curves_refuses_when_nothing_is_a_curve(tmp_path):
    with pytest.raises(ValueError, match="no metric has more than one point.*train_loss"):
        plot_training_curves({"train_loss": [(0, 1.0)]}, tmp_path / "x.png", "run")
    assert not (tmp_path / "x.png").exists()
