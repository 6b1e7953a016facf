"""Curves of a run, drawn with matplotlib from its metrics.jsonl records: loss.png at the end of
training, `ganforge report`, benchmarks and notebooks all call these functions. `images_figure`
draws image grids (with a caption per image when asked) for the notebooks.

Each returns a matplotlib `Figure` built without pyplot (no global figure registry, no display:
the Agg canvas renders it), so a notebook shows it inline and `save_png` writes it atomically.

    fig = loss_figure(RunDir("runs/digits").read_metrics())
    save_png(fig, "loss.png")
"""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ganforge.errors import GanforgeError
from ganforge.files import atomic_write
from ganforge.outputs import grid
from ganforge.rundir import RunDir

SMOOTHING = 0.9  # EMA weight of the smoothed loss curves (TensorBoard's default slider is 0.6-0.9)
DPI = 100
# What real data scores on ganforge's evaluator: the 10,000 bundled MNIST training digits against
# the MNIST test features (docs/metrics.md). A generator cannot be expected to beat these.
REAL_DIGITS = {"fid": 0.135, "precision": 0.861, "recall": 0.866, "coverage": 0.930, "class_accuracy": 0.997}
FIDELITY_DIVERSITY = ("precision", "recall", "coverage", "class_accuracy")
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
IMAGE_INCHES = 0.5  # per image in a plain grid: a 28 px digit drawn at about 1.8x
CAPTIONED_INCHES = 1.1  # per captioned panel: room for two short lines of caption
MAX_WIDTH = 12.0  # inches: wider grids shrink to fit a notebook column
STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9}

Series = dict[str, tuple[Sequence[float], Sequence[float]]]


def smooth(values: Sequence[float], weight: float = SMOOTHING) -> np.ndarray:
    """Debiased exponential moving average (as TensorBoard draws it): the first points are not
    pulled towards 0, and non-finite values are skipped rather than spreading NaN."""
    out, avg, norm = np.empty(len(values)), 0.0, 0.0
    for i, v in enumerate(values):
        if math.isfinite(v):
            avg, norm = weight * avg + (1 - weight) * v, weight * norm + (1 - weight)
        out[i] = avg / norm if norm else math.nan
    return out


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png(fig: Figure, dpi: int = DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def save_png(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write `fig` as a PNG, atomically (a reader never sees half a file)."""
    atomic_write(Path(path), png(fig, dpi))
    return Path(path)


def _style(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


def _empty(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, what, transform=ax.transAxes, ha="center", va="center", color="#777777")


def _column(records: list[dict], key: str, within: str | None = None) -> tuple[list, list]:
    """(steps, values) of `key` in the records (or in their `within` sub-dict) that have it."""
    pts = [(r["step"], (r[within] if within else r)[key]) for r in records
           if RunDir.is_number(r.get("step")) and (within is None or isinstance(r.get(within), dict))
           and RunDir.is_number((r[within] if within else r).get(key))]
    return [float(p[0]) for p in pts], [float(p[1]) for p in pts]  # NaN and Inf: each curve deals with them


def draw_losses(ax: Axes, records: list[dict]) -> None:
    """loss_d and loss_g by step: the raw interval means faint, their EMA solid."""
    _style(ax, "losses (faint: raw, solid: smoothed)", "step", "loss")
    drawn = False
    for key, color in zip(("loss_d", "loss_g"), COLORS):
        steps, values = _column(records, key)
        if steps:
            ax.plot(steps, values, color=color, alpha=0.3, linewidth=1)
            ax.plot(steps, smooth(values), color=color, linewidth=2, label=key)
            drawn = True
    if drawn:
        ax.legend(loc="best")
    else:
        _empty(ax, "no losses logged yet")


def draw_discriminator(ax: Axes, records: list[dict]) -> None:
    """D's mean sigmoid(score) on real and fake batches: the two drift together towards the
    middle when the game is balanced, and part for good when D wins."""
    _style(ax, "the police: D on real and fake", "step", "mean sigmoid(D)")
    drawn = False
    for key, label, color in (("d_real", "D(x), real", COLORS[2]), ("d_fake", "D(G(z)), fake", COLORS[3])):
        steps, values = _column(records, key)
        if steps:
            ax.plot(steps, values, color=color, alpha=0.3, linewidth=1)
            ax.plot(steps, smooth(values), color=color, linewidth=2, label=label)
            drawn = True
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(0.5, color="#999999", linestyle=":", linewidth=1)
    if drawn:
        ax.legend(loc="best")
    else:
        _empty(ax, "no D statistics logged yet")


def draw_fid(ax: Axes, records: list[dict], floor: dict[str, float] | None) -> None:
    """FID by step on a log axis (it falls by orders of magnitude), with real data's FID."""
    _style(ax, "FID[digits] (lower is better)", "step", "FID[digits]")
    steps, values = _column(records, "fid", "eval")
    if not steps:
        _empty(ax, "no evaluations logged (--eval-every)")
        return
    ax.plot(steps, values, color=COLORS[0], marker="o", markersize=3, linewidth=2, label="generator")
    if floor and "fid" in floor:
        ax.axhline(floor["fid"], color=COLORS[0], linestyle="--", linewidth=1,
                   label=f"real digits ({floor['fid']:g})")
    if all(v > 0 for v in values):
        ax.set_yscale("log")
    ax.legend(loc="best")


def draw_fidelity(ax: Axes, records: list[dict], floor: dict[str, float] | None) -> None:
    """Precision, recall, coverage and class accuracy by step, each with real data's value
    dashed in its colour."""
    _style(ax, "fidelity and diversity (higher is better)", "step", "score")
    drawn = False
    for key, color in zip(FIDELITY_DIVERSITY, COLORS[1:]):
        steps, values = _column(records, key, "eval")
        if not steps:
            continue
        ax.plot(steps, values, color=color, marker="o", markersize=3, linewidth=2, label=key.replace("_", " "))
        if floor and key in floor:
            ax.axhline(floor[key], color=color, linestyle="--", linewidth=1)
        drawn = True
    ax.set_ylim(-0.02, 1.02)
    if drawn:
        if floor:
            ax.plot([], [], color="#555555", linestyle="--", linewidth=1, label="real digits")
        ax.legend(loc="lower right")
    else:
        _empty(ax, "no evaluations logged (--eval-every)")


def draw_image(ax: Axes, image: np.ndarray, title: str | None = None) -> None:
    """A uint8 (H, W) or (H, W, 3) image, pixels kept sharp, without axes."""
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    if title:
        ax.set_title(title)
    ax.axis("off")


def images_figure(images: torch.Tensor, ncol: int = 10, title: str | None = None,
                  captions: Sequence[str] | None = None) -> Figure:
    """uint8 images (N, C, H, W) as a grid, `ncol` to a row, for notebooks. With `captions` (one
    per image) each image gets its own panel with its caption above it, so verdicts and labels
    can be read next to the image they describe."""
    if captions is not None and len(captions) != len(images):
        raise GanforgeError(f"got {len(captions)} captions for {len(images)} images; give one per image")
    ncol = max(1, min(ncol, len(images)))
    nrow = math.ceil(len(images) / ncol)
    with matplotlib.rc_context(STYLE):
        if captions is None:
            fig = new_figure(min(IMAGE_INCHES * ncol, MAX_WIDTH), IMAGE_INCHES * nrow + (0.4 if title else 0.1))
            draw_image(fig.subplots(), grid(images, ncol), title)
            return fig
        fig = new_figure(min(CAPTIONED_INCHES * ncol, MAX_WIDTH), (CAPTIONED_INCHES + 0.3) * nrow + (0.4 if title else 0))
        axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
        for i, ax in enumerate(axes):
            ax.axis("off")
            if i < len(images):
                draw_image(ax, _pixels(images[i]))
                ax.set_title(captions[i], fontsize=8)
        if title:
            fig.suptitle(title)
    return fig


def _pixels(image: torch.Tensor) -> np.ndarray:
    """A uint8 image (C, H, W) as the (H, W) or (H, W, 3) array imshow takes."""
    arr = image.cpu().numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def loss_figure(records: list[dict]) -> Figure:
    """The end-of-run loss.png: losses beside D's view of real and fake."""
    with matplotlib.rc_context(STYLE):
        fig = new_figure(11, 3.8)
        ax_loss, ax_d = fig.subplots(1, 2)
        draw_losses(ax_loss, records)
        draw_discriminator(ax_d, records)
    return fig


def metrics_figure(records: list[dict], floor: dict[str, float] | None = None) -> Figure:
    """FID beside precision/recall/coverage/class accuracy; `floor`: what real data scores."""
    with matplotlib.rc_context(STYLE):
        fig = new_figure(11, 3.8)
        ax_fid, ax_pr = fig.subplots(1, 2)
        draw_fid(ax_fid, records, floor)
        draw_fidelity(ax_pr, records, floor)
    return fig


def report_figure(records: list[dict], sheet: np.ndarray | None = None,
                  floor: dict[str, float] | None = None, title: str | None = None) -> Figure:
    """`ganforge report`: losses, D, FID and fidelity/diversity curves over a sample sheet
    (a uint8 (H, W) or (H, W, 3) array, one row per class)."""
    with matplotlib.rc_context(STYLE):
        fig = new_figure(11, 8 + (4.5 if sheet is not None else 0))
        rows = 3 if sheet is not None else 2
        gs = fig.add_gridspec(rows, 2, height_ratios=[1, 1, 1.2][:rows])
        draw_losses(fig.add_subplot(gs[0, 0]), records)
        draw_discriminator(fig.add_subplot(gs[0, 1]), records)
        draw_fid(fig.add_subplot(gs[1, 0]), records, floor)
        draw_fidelity(fig.add_subplot(gs[1, 1]), records, floor)
        if sheet is not None:
            draw_image(fig.add_subplot(gs[2, :]), sheet, "one row per class, fixed noise")
        if title:
            fig.suptitle(title, fontsize=12)
    return fig


def draw_curves(ax: Axes, series: Series, title: str, xlabel: str, ylabel: str) -> None:
    """Named (x, y) series on one labelled axis."""
    _style(ax, title, xlabel, ylabel)
    for (name, (xs, ys)), color in zip(series.items(), itertools.cycle(COLORS)):
        ax.plot(xs, ys, color=color, marker="o", markersize=3, linewidth=2, label=name)
    if series:
        ax.legend(loc="best")


def curves_figure(series: Series, title: str, xlabel: str, ylabel: str) -> Figure:
    """Named (x, y) series on one labelled axis (benchmarks' comparisons)."""
    with matplotlib.rc_context(STYLE):
        fig = new_figure(8, 4.5)
        draw_curves(fig.subplots(), series, title, xlabel, ylabel)
    return fig
