"""The optimizer both players learn with, in training and in the playground's lab: one place, so
the lab trains as `ganforge train` does."""

from __future__ import annotations

import torch


def make_optimizer(params, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    """Adam over `params`: the fused kernel, which updates all tensors in one pass (faster on CPU
    and GPU), or foreach where a build lacks it."""
    params = list(params)  # listed first: a failed try must not use up a generator
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)
