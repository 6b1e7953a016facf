"""Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020): colour (brightness,
saturation, contrast), translation and cutout, applied alike to real and generated images so that
D cannot overfit a small data set while G still gets gradients through the augmentation. Each op
is applied to each image with probability `p` (a fixed `augment`, or tuned by ADA during
training); `ops` chooses which run, always in the order of AUGMENT_OPS (colour, then geometry, as
DiffAugment's "color,translation,cutout" policy). No flips here: a mirrored digit is another
symbol, so x-flips are a property of the data (`--mirror`), not of every run.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ganforge.config import AUGMENT_OPS, DEFAULT_AUGMENT_OPS

TRANSLATE = 1 / 8  # largest shift, as a fraction of the side
CUTOUT = 1 / 2  # side of the erased square, as a fraction of the side


def translate(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Shift each image by up to TRANSLATE of its side, filling with the background (-1)."""
    b, _, h, w = x.shape
    s = max(1, int(h * TRANSLATE + 0.5))  # rounded half up, as in DiffAugment
    dx = torch.randint(-s, s + 1, (b, 1, 1), generator=gen, device=x.device)
    dy = torch.randint(-s, s + 1, (b, 1, 1), generator=gen, device=x.device)
    keep = torch.rand(b, 1, 1, generator=gen, device=x.device) >= p
    dx, dy = dx.masked_fill(keep, 0), dy.masked_fill(keep, 0)
    ys = torch.arange(h, device=x.device).view(1, h, 1) - dy  # (B, H, 1) source rows
    xs = torch.arange(w, device=x.device).view(1, 1, w) - dx  # (B, 1, W) source columns
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    rows = (ys.clamp(-1, h) + 1).expand(b, h, w)
    cols = (xs.clamp(-1, w) + 1).expand(b, h, w)
    flat = rows * (w + 2) + cols  # (B, H, W) index into the padded image
    out = padded.flatten(2).gather(2, flat.flatten(1).unsqueeze(1).expand(-1, x.shape[1], -1))
    return out.view_as(x)


def cutout(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Erase (set to -1) a square of side CUTOUT centred at a random pixel of each chosen image
    (clipped at the border, as in DiffAugment)."""
    b, _, h, w = x.shape
    size = max(1, int(h * CUTOUT + 0.5))
    top = torch.randint(0, h, (b, 1, 1), generator=gen, device=x.device) - size // 2
    left = torch.randint(0, w, (b, 1, 1), generator=gen, device=x.device) - size // 2
    apply = torch.rand(b, 1, 1, generator=gen, device=x.device) < p
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    # rows top .. top+size-1 and columns left .. left+size-1: exactly size x size pixels
    inside = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size) & apply  # (B, H, W)
    return x.masked_fill(inside.unsqueeze(1), -1.0)


def _chosen(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """(B, 1, 1, 1): which images an op changes, each with probability p."""
    return torch.rand(len(x), 1, 1, 1, generator=gen, device=x.device) < p


def _draw(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, 1, 1, 1) uniform draws in [0, 1), one per image."""
    return torch.rand(len(x), 1, 1, 1, generator=gen, device=x.device)


# The colour ops follow DiffAugment's rand_brightness, rand_saturation and rand_contrast on images
# in [-1, 1] (no clamping, as there); an image that is not chosen passes through unchanged.
def brightness(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Add U(-0.5, 0.5) to every pixel of each chosen image."""
    shift, chosen = _draw(x, gen) - 0.5, _chosen(x, p, gen)
    return torch.where(chosen, x + shift, x)


def saturation(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Scale each pixel's distance from its mean over the channels by U(0, 2) (a no-op on grey)."""
    factor, chosen = _draw(x, gen) * 2, _chosen(x, p, gen)
    mean = x.mean(dim=1, keepdim=True)  # (B, 1, H, W)
    return torch.where(chosen, (x - mean) * factor + mean, x)


def contrast(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Scale each pixel's distance from the image's mean by U(0.5, 1.5)."""
    factor, chosen = _draw(x, gen) + 0.5, _chosen(x, p, gen)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return torch.where(chosen, (x - mean) * factor + mean, x)


OPS = {"brightness": brightness, "saturation": saturation, "contrast": contrast,
       "translation": translate, "cutout": cutout}


def diff_augment(x: torch.Tensor, p: float, gen: torch.Generator,
                 ops: Sequence[str] = DEFAULT_AUGMENT_OPS) -> torch.Tensor:
    """Each op in `ops` (in AUGMENT_OPS order), each with probability p per image; differentiable
    in x."""
    if p <= 0:
        return x
    for name in AUGMENT_OPS:
        if name in ops:
            x = OPS[name](x, p, gen)
    return x
