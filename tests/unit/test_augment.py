"""DiffAugment: translation moves content and fills with the background, cutout erases a square of
the documented side, p is the per-image probability, and gradients flow through both."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from ganforge.augment import CUTOUT, TRANSLATE, cutout, diff_augment, translate


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def dots(b: int, side: int) -> torch.Tensor:
    """Background -1 with one bright pixel in the middle of each image: (B, 1, side, side)."""
    x = torch.full((b, 1, side, side), -1.0)
    x[:, :, side // 2, side // 2] = 1.0
    return x


@pytest.mark.parametrize("side", [28, 36])
def test_translate_moves_content_by_at_most_the_documented_shift(side):
    x = dots(400, side)
    out = translate(x, 1.0, gen())
    assert (out == 1).flatten(1).sum(1).eq(1).all()  # the dot moved, intact, never off the image
    assert set(out.unique().tolist()) == {-1.0, 1.0}  # filled with the background, no blending
    where = (out[:, 0] == 1).nonzero()[:, 1:] - side // 2  # (B, 2) shifts (dy, dx)
    s = int(side * TRANSLATE + 0.5)  # DiffAugment rounds half up: 28 -> 4, 36 -> 5
    assert where.abs().max() == s
    assert set(where[:, 0].tolist()) == set(range(-s, s + 1))


def test_translate_fills_uncovered_border_with_background():
    x = torch.ones(64, 1, 8, 8)
    out = translate(x, 1.0, gen())
    shifted = (out == -1).flatten(1).any(1)
    assert shifted.any() and (out[shifted] == -1).any()
    # every image keeps an 8 - 2*1 = 6 px core of content, whatever its shift (s = 1 at 8 px)
    assert (out[:, :, 1:7, 1:7] == 1).all()


@pytest.mark.parametrize("side", [8, 28, 64])
def test_cutout_erases_exactly_a_square_of_the_documented_side(side):
    x = torch.ones(300, 1, side, side)
    out = cutout(x, 1.0, gen())
    erased = out[:, 0] == -1  # (B, H, W)
    size = int(side * CUTOUT + 0.5)
    rows, cols = erased.any(2).sum(1), erased.any(1).sum(1)
    # where the square lies wholly inside the image, it is exactly size x size
    inside = erased.sum((1, 2)) == size * size
    assert inside.any()
    assert (rows[inside] == size).all() and (cols[inside] == size).all()
    assert (rows <= size).all() and (cols <= size).all()  # clipped at the border, never larger
    # and it is one rectangle: its area is rows x cols
    assert_close(erased.sum((1, 2)), rows * cols)


def test_p_is_the_per_image_probability():
    x = torch.ones(2000, 1, 16, 16)
    assert torch.equal(diff_augment(x, 0.0, gen()), x)
    changed = (cutout(x, 0.3, gen()) != x).flatten(1).any(1).float().mean()
    assert 0.25 < float(changed) < 0.35
    assert (cutout(x, 1.0, gen()) != x).flatten(1).any(1).all()


def test_gradient_flows_through_augmentation_as_the_same_moves():
    # Translation and cutout are a pixel permutation and a mask: d out / d x routes each output
    # pixel's upstream gradient back to the one input pixel it came from (none for fill pixels).
    x = torch.randn(16, 3, 12, 12, requires_grad=True)
    out = diff_augment(x, 1.0, gen(3))
    upstream = torch.randn_like(out)
    (grad,) = torch.autograd.grad((out * upstream).sum(), x)
    # apply the very same augmentation to an "index image" to learn where each pixel went
    ids = torch.arange(x.numel(), dtype=torch.float64).view_as(x)
    moved = diff_augment(ids, 1.0, gen(3))
    expected = torch.zeros(x.numel(), dtype=torch.float64)
    kept = moved.flatten() >= 0
    expected.index_add_(0, moved.flatten()[kept].long(), upstream.double().flatten()[kept])
    assert_close(grad.double().flatten(), expected)
    assert grad.abs().sum() > 0
