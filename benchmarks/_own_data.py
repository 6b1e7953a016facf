"""The image folders of benchmarks/own_images.py, made from MNIST, and the colour measures.

Every folder has one sub-folder per class named by its digit ("0".."9"), so the class a GAN draws
maps back to a digit by its name (a model of 5..9 has labels 0..4 named "5".."9").

Coloured digits: each MNIST digit (resized to 32x32) is drawn in a random foreground colour on a
random background colour, both uniform in RGB but at least MIN_CONTRAST apart in luma, so that the
luminance of every image still shows its digit. To read a generated colour digit, `digit_view`
takes its luma, the background's luma (median of the BORDER-pixel frame: MNIST digits never touch
it) and the absolute difference from it, stretched to 0..255: the digit comes out white on black
whatever the two colours and which is brighter. The colour measure compares the distribution of
each image's foreground and background colours (mean RGB of the pixels that `digit_view` marks as
stroke or as background) by total variation over a 4x4x4 RGB-cube histogram; `luma_difference`
reads how far apart in luma those two colours are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.data.dataset import resize, to_grey
from ganforge.data.mnist import load_idx_dir

MIN_CONTRAST = 0.35  # |luma(fg) - luma(bg)| in 0..1: the digit stays readable in grey
BORDER = 2  # pixels of the frame that give the background colour
STROKE, GROUND = 128, 32  # digit_view levels above which a pixel is stroke, below which background
CUBE_BINS = 4  # per RGB channel: 64 colour bins
LUMA = torch.tensor([0.299, 0.587, 0.114])


def mnist(directory: str | Path, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 1, 28, 28) images and int64 (N,) labels of an MNIST split."""
    ds = load_idx_dir(Path(directory), split)
    return ds.images, ds.labels


def pick(labels: torch.Tensor, classes: list[int], per_class: int | None, seed: int = 0) -> torch.Tensor:
    """Indices of `per_class` random images of each class in `classes` (all of them if None)."""
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for c in classes:
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        chosen.append(idx if per_class is None else idx[:per_class])
    return torch.cat(chosen)


def write_folder(root: Path, images: torch.Tensor, labels: torch.Tensor) -> Path:
    """uint8 (N, C, H, W) images as PNGs in root/<digit>/NNNNN.png; returns root."""
    for c in labels.unique().tolist():
        (root / str(c)).mkdir(parents=True, exist_ok=True)
    for i, (img, c) in enumerate(zip(images, labels.tolist())):
        a = img.numpy()
        pil = Image.fromarray(a[0]) if a.shape[0] == 1 else Image.fromarray(a.transpose(1, 2, 0))
        pil.save(root / str(c) / f"{i:05d}.png")
    return root


def lanczos_28(images: torch.Tensor) -> torch.Tensor:
    """uint8 grey (N, 1, R, R) -> (N, 1, 28, 28) by PIL's Lanczos filter. The evaluator's own resize
    (area averaging, over a non-integer 64/28 footprint) blurs strokes enough to cap recall: real
    64 px digits (bilinear from 28) score recall 0.38 through it and 0.68 through this."""
    return torch.stack([torch.from_numpy(np.array(Image.fromarray(a[0].numpy()).resize((28, 28), Image.LANCZOS)))[None]
                        for a in images])


def upsample(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """uint8 (N, C, 28, 28) -> (N, C, resolution, resolution), bilinear."""
    return resize(images, resolution)


def colour_digits(images: torch.Tensor, seed: int = 0,
                  resolution: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grey digits (N, 1, 28, 28) -> uint8 (N, 3, R, R) coloured digits, with their foreground and
    background colours as float (N, 3) in 0..1."""
    gen = torch.Generator().manual_seed(seed)
    n = len(images)
    fg, bg = torch.rand(n, 3, generator=gen), torch.rand(n, 3, generator=gen)
    while True:  # redraw the pairs too close in luma until none is left
        bad = ((fg - bg) @ LUMA).abs() < MIN_CONTRAST
        if not bad.any():
            break
        k = int(bad.sum())
        fg[bad], bg[bad] = torch.rand(k, 3, generator=gen), torch.rand(k, 3, generator=gen)
    alpha = resize(images, resolution).float() / 255  # (N, 1, R, R): 1 on the stroke
    rgb = bg.view(n, 3, 1, 1) + (fg - bg).view(n, 3, 1, 1) * alpha
    return (rgb * 255).round().clamp(0, 255).to(torch.uint8), fg, bg


def _frame(x: torch.Tensor) -> torch.Tensor:
    """The BORDER-pixel frame of (N, C, H, W) as (N, C, P)."""
    mask = torch.ones(x.shape[-2:], dtype=torch.bool)
    mask[BORDER:-BORDER, BORDER:-BORDER] = False
    return x[..., mask]


def digit_view(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) colour digits -> uint8 (N, 1, H, W), white digit on black: |luma -
    luma of the background| stretched so each image's largest difference is 255."""
    luma = to_grey(images).float()  # (N, 1, H, W)
    background = _frame(luma).median(dim=-1).values.view(-1, 1, 1, 1)
    diff = (luma - background).abs()
    peak = diff.amax(dim=(1, 2, 3), keepdim=True).clamp(min=1)
    return (diff / peak * 255).round().to(torch.uint8)


def fg_bg_colours(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's mean foreground and background colour, float (N, 3) in 0..1: the pixels
    `digit_view` puts above STROKE and below GROUND."""
    view = digit_view(images)
    rgb = images.float() / 255
    colours = []
    for mask in (view >= STROKE, view < GROUND):
        m = mask.float()  # (N, 1, H, W); every image has both (the peak is 255, the frame ~0)
        colours.append((rgb * m).sum(dim=(2, 3)) / m.sum(dim=(2, 3)).clamp(min=1))
    return colours[0], colours[1]


def luma_difference(fg: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """luma(fg) - luma(bg) of float (N, 3) colours, in -1..1: > 0 for a lighter digit on a darker
    ground. Of the mean colours of `fg_bg_colours` its absolute value is an image's contrast (the
    data's rule is MIN_CONTRAST on the drawn colours; the mean over a stroke's anti-aliased pixels
    reads a little lower)."""
    return (fg - bg) @ LUMA


def cube_histogram(colours: torch.Tensor) -> torch.Tensor:
    """float (N, 3) colours in 0..1 -> (CUBE_BINS**3,) frequencies."""
    b = (colours * CUBE_BINS).long().clamp(0, CUBE_BINS - 1)
    index = (b[:, 0] * CUBE_BINS + b[:, 1]) * CUBE_BINS + b[:, 2]
    return torch.bincount(index, minlength=CUBE_BINS**3).float() / len(colours)


def colour_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Total variation between the RGB-cube histograms of two sets of colours: 0 (same) .. 1."""
    return 0.5 * float((cube_histogram(a) - cube_histogram(b)).abs().sum())


def digit_labels(class_names: list[str], labels: torch.Tensor) -> torch.Tensor:
    """A model's labels -> the digits its class folders are named for."""
    return torch.tensor([int(n) for n in class_names])[labels]


