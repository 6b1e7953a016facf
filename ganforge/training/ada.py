"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data"): the probability p of the DiffAugment ops is tuned during training
from D's overfitting signal r_t = E[sign(D(x_real))], the mean sign of D's logits on (augmented)
real images. A D that memorises a small data set grows confident on it (r_t -> 1); augmenting
more often takes that away.

Every `interval` D steps, r_t is the mean over those steps (and, under torchrun, over every rank)
and p moves by sign(r_t - target) * batch * interval / (kimg * 1000), clamped to [0, 1]: p can go
from 0 to 1 in kimg thousand real images. The paper's values (and stylegan2-ada-pytorch's
defaults ada_target=0.6, ada_interval=4, ada_kimg=500) are ganforge's defaults.

p, the last r_t and the signs summed so far in the current interval go into every checkpoint's
metadata (under "ada"), so a resumed run tunes p exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ganforge import dist
from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError


def adjust(p: float, r_t: float, target: float, images: int, kimg: float) -> float:
    """ADA's update: p + sign(r_t - target) * images / (kimg * 1000), clamped to [0, 1]."""
    sign = (r_t > target) - (r_t < target)
    return min(1.0, max(0.0, p + sign * images / (kimg * 1000)))


class AdaptiveAugment:
    """p and what it is tuned from. `observe` after every D step; the game reads `p`."""

    def __init__(self, cfg: TrainConfig, device: torch.device):
        self.target, self.interval, self.kimg = cfg.ada_target, cfg.ada_interval, cfg.ada_kimg
        self.batch_size = cfg.batch_size  # the global batch: every rank's real images count
        self.p = 0.0
        self.r_t: float | None = None  # the last interval's, for logs
        self.signs = torch.zeros((), device=device)  # sum of the per-step mean signs this interval

    def observe(self, real_sign: torch.Tensor, d_step: int) -> None:
        """Add D step `d_step`'s mean sign of D(real) (a scalar tensor); after every
        `interval`-th D step, move p. The per-step mean is averaged over ranks at once, so every
        rank (and a checkpoint written by rank 0) holds the same sum."""
        self.signs = self.signs + dist.average(real_sign.detach().float())
        if (d_step + 1) % self.interval == 0:
            self.r_t = float(self.signs) / self.interval
            self.p = adjust(self.p, self.r_t, self.target, self.batch_size * self.interval, self.kimg)
            self.signs = torch.zeros_like(self.signs)

    def state(self) -> dict:
        """For the checkpoint's JSON metadata (Python floats round-trip exactly through JSON)."""
        return {"p": self.p, "r_t": self.r_t, "signs": float(self.signs)}

    def load_state(self, state: dict | None, path: Path) -> None:
        try:
            p, signs = float(state["p"]), float(state["signs"])
            r_t = None if state["r_t"] is None else float(state["r_t"])
        except (KeyError, TypeError, ValueError) as e:
            raise GanforgeError(f"{path}: damaged adaptive augmentation state ({e!r}); it cannot be "
                                "resumed") from None
        if not (0 <= p <= 1 and math.isfinite(signs) and abs(signs) <= self.interval):
            raise GanforgeError(f"{path}: damaged adaptive augmentation state (p={p}, signs={signs}); "
                                "it cannot be resumed")
        self.p, self.r_t = p, r_t
        self.signs = torch.tensor(signs, dtype=torch.float32, device=self.signs.device)

    def log(self) -> dict:
        """What metrics.jsonl records: the current p and the last interval's r_t."""
        return {"ada_p": round(self.p, 6), **({"ada_r_t": round(self.r_t, 4)} if self.r_t is not None else {})}
