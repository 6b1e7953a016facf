"""A DCGAN-style convolutional pair for square images whose side is a multiple of 4 (up to 64).

G: Linear to (4c, R/4, R/4) -> BN, ReLU -> ConvT to (2c, R/2, R/2) -> BN, ReLU -> ConvT to
(C, R, R) -> tanh. D: strided convolutions (c, then 2c channels) with LeakyReLU(0.2), then the
conditioning head. D has no BatchNorm, so its output for one image does not depend on the rest
of the batch (which gradient penalties and data-parallel training both assume).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ganforge.config import ModelConfig
from ganforge.nets.common import DiscriminatorHead, LabelJoin, LabelPlane, input_conditioned


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        c, r4 = cfg.width, cfg.img_resolution // 4
        self.join = LabelJoin(cfg)
        self.fc = nn.Sequential(nn.Linear(self.join.out_dim, 4 * c * r4 * r4, bias=False),
                                nn.BatchNorm1d(4 * c * r4 * r4), nn.ReLU(inplace=True))
        self.convs = nn.Sequential(
            nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * c, cfg.img_channels, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        c, r4 = self.cfg.width, self.cfg.img_resolution // 4
        x = self.fc(self.join(z, labels)).view(-1, 4 * c, r4, r4)  # (B, 4c, R/4, R/4)
        return self.convs(x)  # (B, C, R, R) in [-1, 1]


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c, r = cfg.width, cfg.img_resolution
        self.label_plane = LabelPlane(cfg) if input_conditioned(cfg) else None
        c_in = cfg.img_channels + (1 if self.label_plane is not None else 0)
        self.convs = nn.Sequential(
            nn.Conv2d(c_in, c, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))
        self.head = DiscriminatorHead(2 * c * (r // 4) ** 2, cfg)

    def forward(self, img: torch.Tensor, labels: torch.Tensor | None = None):
        if self.label_plane is not None:
            img = self.label_plane(img, labels)  # (B, C+1, R, R)
        return self.head(self.convs(img).flatten(1), labels)  # features (B, 2c*(R/4)^2)
