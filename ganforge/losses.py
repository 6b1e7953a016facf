"""GAN losses as pure functions of D's logits (and, for penalties, of D's input gradients).

Notation: r = D(x) on real images, f = D(G(z)) on generated ones, sigma the logistic sigmoid.
Every function returns a scalar averaged over the batch. softplus(t) = log(1 + e^t), so
-log sigma(t) = softplus(-t) and -log(1 - sigma(t)) = softplus(t), computed stably.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def d_bce(r: Tensor, f: Tensor) -> Tensor:
    # -log sigma(r) - log(1 - sigma(f)): D's side of the minimax game (also used by minimax)
    return F.softplus(-r).mean() + F.softplus(f).mean()


def g_minimax(f: Tensor) -> Tensor:
    # log(1 - sigma(f)) = -softplus(f): the saturating original (Goodfellow et al. 2014);
    # its gradient vanishes when D confidently rejects G's images, so it is for teaching
    return -F.softplus(f).mean()


def g_bce(f: Tensor) -> Tensor:
    # -log sigma(f): the non-saturating generator loss, same fixed point, strong early gradients
    return F.softplus(-f).mean()


def d_lsgan(r: Tensor, f: Tensor) -> Tensor:
    # 1/2 (r - 1)^2 + 1/2 f^2 (Mao et al. 2017, a = 0, b = c = 1)
    return 0.5 * ((r - 1).pow(2).mean() + f.pow(2).mean())


def g_lsgan(f: Tensor) -> Tensor:
    # 1/2 (f - 1)^2
    return 0.5 * (f - 1).pow(2).mean()


def d_hinge(r: Tensor, f: Tensor) -> Tensor:
    # max(0, 1 - r) + max(0, 1 + f) (Lim & Ye 2017; Miyato et al. 2018)
    return F.relu(1 - r).mean() + F.relu(1 + f).mean()


def g_hinge(f: Tensor) -> Tensor:
    # -f
    return -f.mean()


def d_wasserstein(r: Tensor, f: Tensor) -> Tensor:
    # f - r: the critic's estimate of -W(P_real, P_fake) (Arjovsky et al. 2017)
    return f.mean() - r.mean()


def g_wasserstein(f: Tensor) -> Tensor:
    # -f
    return -f.mean()


def _norm(grad: Tensor, eps: float = 1e-12) -> Tensor:
    # sqrt(sum g^2 + eps): the plain norm's gradient is 0/0 at g = 0
    return grad.flatten(1).pow(2).sum(1).add(eps).sqrt()


def gradient_penalty(grad: Tensor) -> Tensor:
    # (||grad_x D(x_hat)||_2 - 1)^2 at x_hat = e x + (1 - e) G(z), e ~ U[0, 1] per sample
    # (Gulrajani et al. 2017); `grad` is that input gradient, (B, C, H, W)
    return (_norm(grad) - 1).pow(2).mean()


def r1_penalty(grad: Tensor) -> Tensor:
    # ||grad_x D(x)||^2 on real x (Mescheder et al. 2018); scaled by gamma / 2 by the caller
    return grad.flatten(1).pow(2).sum(1).mean()


def mode_seeking(x1: Tensor, x2: Tensor, z1: Tensor, z2: Tensor, eps: float = 1e-5,
                 mean: Callable[[Tensor], Tensor] = Tensor.mean) -> Tensor:
    # Mode-seeking term of MSGAN (Mao et al. 2019): pairs of fakes of the same class from two noise
    # vectors should differ as much as their noise does; G minimises the inverse of that ratio, so
    # a G that maps different z to one image (intra-class collapse) pays for it. `mean`: over the
    # whole batch, which data-parallel training spreads over its ranks (dist.global_mean).
    ratio = mean((x1 - x2).abs()) / mean((z1 - z2).abs())
    return 1 / (ratio + eps)


def class_loss(class_logits: Tensor, labels: Tensor) -> Tensor:
    # -log softmax(class_logits)[y]: ACGAN's auxiliary classification term (Odena et al. 2017)
    return F.cross_entropy(class_logits, labels)


DLoss = Callable[[Tensor, Tensor], Tensor]
GLoss = Callable[[Tensor], Tensor]

# name -> (D loss, G loss); wgan-gp's penalty is added by the game, which owns D's inputs.
LOSSES: dict[str, tuple[DLoss, GLoss]] = {
    "minimax": (d_bce, g_minimax),
    "bce": (d_bce, g_bce),
    "lsgan": (d_lsgan, g_lsgan),
    "hinge": (d_hinge, g_hinge),
    "wgan-gp": (d_wasserstein, g_wasserstein),
}
