"""A small residual pair (after SNGAN's ResNets, Miyato et al. 2018) for square images whose side
is a multiple of 4 (8 to 64 px; sized for 28-64), grey or colour.

G: Linear to (4c, R/4, R/4) -> up-block to (2c, R/2, R/2) -> up-block to (c, R, R) -> BN, ReLU,
3x3 conv to C channels -> tanh. An up-block is BN, ReLU, 2x nearest upsampling, 3x3 conv, BN, ReLU,
3x3 conv, plus an upsampled 1x1 conv shortcut.
D, the mirror of G: down-block to (c, R/2, R/2) -> down-block to (2c, R/4, R/4) -> block to
(4c, R/4, R/4) -> ReLU -> mean over positions -> the conditioning head. A down-block is [ReLU], 3x3
conv, ReLU, 3x3 conv, 2x2 average pooling, plus a pooled 1x1 conv shortcut (the last block does
not pool). Like the other Ds it has no BatchNorm, so one image's output never depends on the
rest of the batch (which gradient penalties assume).

Channels shrink as the resolution grows, and c = width / 8: the default width 128 gives 64, 32 and
16 channels at R/4, R/2 and R, which keeps the 3x3 convolutions at full resolution cheap enough
for a CPU (3x3 convolutions cost the square of their channel count).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ganforge.config import ModelConfig
from ganforge.nets.common import DiscriminatorHead, LabelJoin, LabelPlane, input_conditioned


def channels(cfg: ModelConfig) -> int:
    """c, the channel count at full resolution (config.validate keeps it >= 1)."""
    return cfg.width // 8


def conv3x3(c_in: int, c_out: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)


class UpBlock(nn.Module):
    """(B, c_in, H, W) -> (B, c_out, 2H, 2W)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.ReLU(), nn.Upsample(scale_factor=2),
            conv3x3(c_in, c_out, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            conv3x3(c_out, c_out))
        self.skip = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.skip(x)


class DownBlock(nn.Module):
    """(B, c_in, H, W) -> (B, c_out, H/2, W/2), or (B, c_out, H, W) with down=False. The first
    block sees raw pixels, so it does not start with a ReLU (that would clip every background
    pixel at -1 to 0)."""

    def __init__(self, c_in: int, c_out: int, first: bool = False, down: bool = True):
        super().__init__()
        pool = [nn.AvgPool2d(2)] if down else []
        self.main = nn.Sequential(
            *([] if first else [nn.ReLU()]), conv3x3(c_in, c_out), nn.ReLU(inplace=True),
            conv3x3(c_out, c_out), *pool)
        # Pooling and a 1x1 convolution commute; pooling first is 4x cheaper.
        self.skip = nn.Sequential(*pool, nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.skip(x)


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        c, r4 = channels(cfg), cfg.img_resolution // 4
        self.join = LabelJoin(cfg)
        self.fc = nn.Linear(self.join.out_dim, 4 * c * r4 * r4)
        self.blocks = nn.Sequential(UpBlock(4 * c, 2 * c), UpBlock(2 * c, c))
        self.out = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                 conv3x3(c, cfg.img_channels), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        c, r4 = channels(self.cfg), self.cfg.img_resolution // 4
        x = self.fc(self.join(z, labels)).view(-1, 4 * c, r4, r4)  # (B, 4c, R/4, R/4)
        return self.out(self.blocks(x))  # (B, C, R, R) in [-1, 1]


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = channels(cfg)
        self.label_plane = LabelPlane(cfg) if input_conditioned(cfg) else None
        c_in = cfg.img_channels + (1 if self.label_plane is not None else 0)
        self.blocks = nn.Sequential(DownBlock(c_in, c, first=True), DownBlock(c, 2 * c),
                                    DownBlock(2 * c, 4 * c, down=False), nn.ReLU(inplace=True))
        self.head = DiscriminatorHead(4 * c, cfg)

    def forward(self, img: torch.Tensor, labels: torch.Tensor | None = None):
        if self.label_plane is not None:
            img = self.label_plane(img, labels)  # (B, C+1, R, R)
        # Mean over positions: SNGAN sums, which scales the logit with the image area and, without
        # spectral norm, starts D saturated. Features (B, 4c).
        return self.head(self.blocks(img).mean(dim=(2, 3)), labels)
