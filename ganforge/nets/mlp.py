"""The classic fully-connected GAN pair, as in the well-known MNIST GAN notebook.

G: four blocks Linear -> BatchNorm1d -> ReLU of widths h, 2h, 4h, 8h, then Linear -> tanh.
D: three blocks Linear -> LeakyReLU(0.2) of widths 4h, 2h, h, then the conditioning head.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ganforge.config import ModelConfig
from ganforge.nets.common import DiscriminatorHead, LabelJoin, input_conditioned


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.width
        self.join = LabelJoin(cfg)
        widths = [self.join.out_dim, h, 2 * h, 4 * h, 8 * h]
        blocks = []
        for w_in, w_out in zip(widths, widths[1:]):
            blocks += [nn.Linear(w_in, w_out), nn.BatchNorm1d(w_out), nn.ReLU(inplace=True)]
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Linear(8 * h, cfg.img_channels * cfg.img_resolution**2)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.out(self.blocks(self.join(z, labels)))  # (B, C*H*W)
        r = self.cfg.img_resolution
        return torch.tanh(x).view(-1, self.cfg.img_channels, r, r)  # (B, C, H, W) in [-1, 1]


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        h = cfg.width
        pixels = cfg.img_channels * cfg.img_resolution**2
        # Input conditioning joins a learned per-class vector to the flattened image.
        self.label_embed = nn.Embedding(cfg.num_classes, pixels) if input_conditioned(cfg) else None
        d_in = pixels * (2 if self.label_embed is not None else 1)
        widths = [d_in, 4 * h, 2 * h, h]
        blocks = []
        for w_in, w_out in zip(widths, widths[1:]):
            blocks += [nn.Linear(w_in, w_out), nn.LeakyReLU(0.2, inplace=True)]
        self.blocks = nn.Sequential(*blocks)
        self.head = DiscriminatorHead(h, cfg)

    def forward(self, img: torch.Tensor, labels: torch.Tensor | None = None):
        x = img.flatten(1)  # (B, C*H*W)
        if self.label_embed is not None:
            x = torch.cat([x, self.label_embed(labels)], dim=1)
        return self.head(self.blocks(x), labels)

