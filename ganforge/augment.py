"""Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020): translation and
cutout, applied alike to real and generated images so that D cannot overfit a small data set
while G still gets gradients through the augmentation. No flips: a mirrored digit is another
symbol. Each op is applied to each image with probability `p`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


def diff_augment(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Translate, then cut out, each with probability p per image; differentiable in x."""
    if p <= 0:
        return x
    return cutout(translate(x, p, gen), p, gen)
