"""Each loss against values worked out by hand on small logits, and the penalties on known gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from ganforge import losses

R = torch.tensor([0.0, 2.0])  # D's logits on two real images
F_ = torch.tensor([-1.0, 1.0])  # and on two generated ones


def log_sigmoid(t: float) -> float:
    return math.log(1 / (1 + math.exp(-t)))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def scalar(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float32)


def test_d_bce_is_minus_log_likelihood_of_the_right_answers():
    # -log sigma(r) - log(1 - sigma(f)), each averaged over the batch
    expected = mean(-log_sigmoid(r) for r in (0.0, 2.0)) + mean(-math.log(1 - math.exp(log_sigmoid(f)))
                                                               for f in (-1.0, 1.0))
    assert_close(losses.d_bce(R, F_), scalar(expected))


def test_g_minimax_is_log_one_minus_sigmoid():
    expected = mean(math.log(1 - 1 / (1 + math.exp(-f))) for f in (-1.0, 1.0))
    assert_close(losses.g_minimax(F_), scalar(expected))


def test_g_bce_is_minus_log_sigmoid():
    expected = mean(-log_sigmoid(f) for f in (-1.0, 1.0))
    assert_close(losses.g_bce(F_), scalar(expected))


def test_minimax_generator_saturates_where_bce_does_not():
    # When D confidently rejects a fake (f = -10), log(1 - sigma(f)) is flat; -log sigma(f) is not.
    f = torch.tensor([-10.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(losses.g_minimax(f), f)
    (g_ns,) = torch.autograd.grad(losses.g_bce(f), f)
    assert abs(float(g_mm)) < 1e-4
    assert_close(g_ns, torch.tensor([-1.0]), atol=1e-4, rtol=0)


def test_lsgan():
    # D: 1/2 E(r - 1)^2 + 1/2 E f^2 = 1/2 (1 + 1)/2 + 1/2 (1 + 1)/2 = 1; G: 1/2 E(f - 1)^2 = 1/2 (4 + 0)/2
    assert_close(losses.d_lsgan(R, F_), scalar(1.0))
    assert_close(losses.g_lsgan(F_), scalar(1.0))


def test_hinge():
    # D: E max(0, 1 - r) + E max(0, 1 + f) = (1 + 0)/2 + (0 + 2)/2 = 1.5; G: -E f = 0
    assert_close(losses.d_hinge(R, F_), scalar(1.5))
    assert_close(losses.g_hinge(F_), scalar(0.0))
    assert_close(losses.g_hinge(torch.tensor([3.0, 1.0])), scalar(-2.0))


def test_wasserstein():
    # critic: E f - E r = 0 - 1 = -1; generator: -E f
    assert_close(losses.d_wasserstein(R, F_), scalar(-1.0))
    assert_close(losses.g_wasserstein(torch.tensor([3.0, 1.0])), scalar(-2.0))


def test_gradient_penalty_on_known_gradients():
    # per-sample norms 5 (3-4-0) and 0: ((5 - 1)^2 + (0 - 1)^2) / 2 = 8.5
    grad = torch.zeros(2, 1, 2, 2)
    grad[0, 0, 0, 0], grad[0, 0, 1, 1] = 3.0, 4.0
    assert_close(losses.gradient_penalty(grad), scalar(8.5))


def test_gradient_penalty_is_differentiable_at_zero_gradient():
    # The plain norm's derivative is 0/0 at 0; the penalty must give finite gradients there.
    grad = torch.zeros(3, 1, 4, 4, requires_grad=True)
    (d,) = torch.autograd.grad(losses.gradient_penalty(grad), grad)
    assert torch.isfinite(d).all()


def test_r1_penalty_is_mean_squared_norm():
    grad = torch.zeros(2, 1, 2, 2)
    grad[0, 0, 0, 0], grad[0, 0, 1, 1] = 3.0, 4.0
    grad[1] = 1.0
    assert_close(losses.r1_penalty(grad), scalar((25 + 4) / 2))


def test_class_loss_is_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    expected = mean([-math.log(math.exp(2) / (math.exp(2) + 2)), -math.log(1 / 3)])
    assert_close(losses.class_loss(logits, labels), scalar(expected))


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_every_loss_prefers_the_right_answer(name):
    # Whatever the objective, D's loss is lower when it scores real above fake, and G's loss is
    # lower when D scores its images higher.
    d_loss, g_loss = losses.LOSSES[name]
    right, wrong = torch.tensor([2.0]), torch.tensor([-2.0])
    assert d_loss(right, wrong) < d_loss(wrong, right)
    assert g_loss(right) < g_loss(wrong)
