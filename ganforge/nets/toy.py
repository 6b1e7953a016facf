"""The small fully-connected pair for two-dimensional points (the toy sources and points CSVs).

G: z (B, z_dim) -> three blocks Linear -> ReLU of width h -> Linear -> points (B, 2), unbounded
(the data spans about ±4, so no tanh). D: points (B, 2) -> three blocks Linear -> LeakyReLU(0.2)
of width h -> the head's logit. No BatchNorm anywhere: on 2-D data it couples the samples of a
batch, and the lab shows G's gradient on single points. The nets are unconditional: points carry
no labels (the config refuses a conditional toy model).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ganforge.config import ModelConfig
from ganforge.nets.common import DiscriminatorHead

POINT_DIM = 2
DEPTH = 3  # hidden layers of each net; VEEGAN and PacGAN use 2 to 4 on these benchmarks


def _blocks(d_in: int, width: int, activation) -> nn.Sequential:
    layers = []
    for w_in in [d_in] + [width] * (DEPTH - 1):
        layers += [nn.Linear(w_in, width), activation()]
    return nn.Sequential(*layers)


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.blocks = _blocks(cfg.z_dim, cfg.width, lambda: nn.ReLU(inplace=True))
        self.out = nn.Linear(cfg.width, POINT_DIM)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.blocks(z))  # (B, 2)


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.blocks = _blocks(POINT_DIM, cfg.width, lambda: nn.LeakyReLU(0.2, inplace=True))
        self.head = DiscriminatorHead(cfg.width, cfg)

    def forward(self, points: torch.Tensor, labels: torch.Tensor | None = None):
        return self.head(self.blocks(points), None)  # (B,) logits, no class logits
