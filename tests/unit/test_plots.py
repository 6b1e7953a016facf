"""Plots (matplotlib): the smoothing, what each panel shows, the real-data floors, atomic PNGs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from ganforge import plots


def records(n: int = 20, evals: bool = True) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(1, n + 1):
        out.append({"step": 10 * i, "loss_d": 1 + 0.1 * rng.standard_normal(), "loss_g": 0.7,
                    "d_real": 0.7, "d_fake": 0.3})
        if evals and i % 5 == 0:
            out.append({"step": 10 * i, "eval": {"fid": 50 / i, "precision": 0.7, "recall": 0.1 * i / 4,
                                                 "coverage": 0.5, "class_accuracy": 0.9}})
    return out + [{"step": 5, "event": "diverged"}, {"junk": True}]  # other records are ignored


def test_smooth_is_a_debiased_ema_that_skips_nan():
    np.testing.assert_allclose(plots.smooth([2.0] * 5), [2.0] * 5)
    out = plots.smooth([1.0, math.nan, 3.0], weight=0.5)
    assert out[0] == 1.0 and out[1] == 1.0  # the NaN neither shows nor spreads
    assert out[2] == pytest.approx((0.25 * 1 + 0.5 * 3) / 0.75)
    assert math.isnan(plots.smooth([math.nan])[0])


def test_loss_figure_shows_raw_and_smoothed_losses_and_d_on_its_own_panel():
    fig = plots.loss_figure(records())
    assert isinstance(fig, Figure)
    ax_loss, ax_d = fig.axes
    assert ax_loss.get_xlabel() == "step" and ax_loss.get_ylabel() == "loss"
    assert [t.get_text() for t in ax_loss.get_legend().get_texts()] == ["loss_d", "loss_g"]
    assert len(ax_loss.lines) == 4  # raw and smoothed, for each loss
    assert [t.get_text() for t in ax_d.get_legend().get_texts()] == ["D(x), real", "D(G(z)), fake"]
    assert ax_d.get_ylim() == pytest.approx((-0.02, 1.02))
    assert ax_loss.xaxis.get_gridlines()[0].get_visible()


def test_numbers_a_float_cannot_hold_are_left_out():
    huge = 10**400  # valid JSON, and json.loads makes it a Python int
    fig = plots.loss_figure(records() + [{"step": 300, "loss_d": huge, "loss_g": 0.7},
                                         {"step": huge, "loss_d": 1.0, "loss_g": 0.7}])
    steps, values = fig.axes[0].lines[0].get_data()  # loss_d, raw
    assert len(steps) == 20 and max(values) < 2


def test_metric_curves_carry_the_real_data_floor():
    fig = plots.metrics_figure(records(), plots.REAL_DIGITS)
    ax_fid, ax_pr = fig.axes
    assert ax_fid.get_yscale() == "log"
    floors = {round(float(line.get_ydata()[0]), 3) for ax in fig.axes for line in ax.lines
              if line.get_linestyle() == "--" and len(line.get_ydata())}
    assert floors == {0.135, 0.861, 0.866, 0.930, 0.997}
    assert "real digits (0.135)" in [t.get_text() for t in ax_fid.get_legend().get_texts()]
    steps, fid = ax_fid.lines[0].get_data()
    assert list(steps) == [50, 100, 150, 200] and fid[0] == pytest.approx(10.0)
    no_floor = plots.metrics_figure(records(), None)
    assert not [line for ax in no_floor.axes for line in ax.lines if line.get_linestyle() == "--"]


def test_figures_without_data_say_so():
    fig = plots.report_figure([], None)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "no losses logged yet" in texts and "no evaluations logged (--eval-every)" in texts


def test_save_png_writes_a_readable_png_atomically(tmp_path):
    out = plots.save_png(plots.loss_figure(records()), tmp_path / "loss.png")
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (1100, 380)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png"]


def test_report_figure_holds_the_sheet(tmp_path):
    sheet = np.zeros((62, 302), np.uint8)
    fig = plots.report_figure(records(), sheet, plots.REAL_DIGITS, "run · step 200")
    assert len(fig.axes) == 5 and fig.axes[4].images[0].get_array().shape == (62, 302)
    with Image.open(plots.save_png(fig, tmp_path / "r.png")) as img:
        assert img.size == (1100, 1250)


def test_images_figure_draws_a_grid_or_one_captioned_panel_per_image():
    import torch

    from ganforge.errors import GanforgeError

    images = torch.arange(5 * 28 * 28, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(5, 1, 28, 28)
    sheet = plots.images_figure(images, ncol=3, title="five")
    (ax,) = sheet.axes
    assert ax.get_title() == "five"
    assert ax.get_images()[0].get_array().shape == (2 * 30 + 2, 3 * 30 + 2)  # outputs.grid: 2 px padding
    captioned = plots.images_figure(images, ncol=3, captions=[f"#{i}" for i in range(5)])
    assert len(captioned.axes) == 6  # 2 rows of 3; the sixth panel stays empty
    assert [a.get_title() for a in captioned.axes[:5]] == [f"#{i}" for i in range(5)]
    assert not captioned.axes[5].get_images()
    np.testing.assert_array_equal(captioned.axes[4].get_images()[0].get_array(), images[4, 0].numpy())
    assert plots.png(captioned)[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(GanforgeError, match="2 captions for 5 images"):
        plots.images_figure(images, captions=["a", "b"])
