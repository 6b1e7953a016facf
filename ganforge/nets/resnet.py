"""A small residual pair (after SNGAN's ResNets, Miyato et al. 2018) whose depth follows the
resolution: one up-block (G) or down-block (D) per octave between a base map and the image, the
base being 7x7 for 28 px (the digit nets) and 4x4 for 8, 16, 32, 64 and 128 px (nets.common.octaves).
Grey or colour.

With c = width / 8 channels at full resolution and n octaves, the stage i octaves below full
resolution has c * 2^min(i, 3) channels (nets.common.stage_channels):
G: Linear to (c_n, base, base) -> n up-blocks, halving the channels down to c at (R, R) -> BN,
ReLU, 3x3 conv to C channels -> tanh. An up-block is BN, ReLU, 2x nearest upsampling, 3x3 conv, BN,
ReLU, 3x3 conv, plus an upsampled 1x1 conv shortcut.
D, the mirror of G: n down-blocks (c, 2c, 4c, 8c, 8c, ...) to the base map -> one more block that
does not pool, to c_n channels -> ReLU -> mean over positions -> the conditioning head. A
down-block is [ReLU], 3x3 conv, ReLU, 3x3 conv, 2x2 average pooling, plus a pooled 1x1 conv
shortcut. Like the other Ds it has no BatchNorm, so one image's output never depends on the rest
of the batch (which gradient penalties assume).

Channels shrink as the resolution grows, which keeps the 3x3 convolutions at full resolution cheap
enough for a CPU (3x3 convolutions cost the square of their channel count): the width 128 gives 64,
32 and 16 channels at 7x7, 14x14 and 28x28, exactly the original digit pair, so its checkpoints load.
Parameters at width 128, RGB, unconditional (G / D): 32 px 0.29M / 0.30M, 64 px 0.60M / 0.62M,
128 px 0.91M / 0.93M. G's forward pass costs 0.02, 0.11 and 0.47 GMAC per image (D about half of
that): each octave costs about four times the one below, as its pixels do.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ganforge.config import ModelConfig
from ganforge.nets.common import DiscriminatorHead, LabelJoin, LabelPlane, input_conditioned, octaves, stage_channels


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
        c = channels(cfg)
        self.base, n = octaves(cfg.img_resolution)
        self.c_base = stage_channels(c, n)
        self.join = LabelJoin(cfg)
        self.fc = nn.Linear(self.join.out_dim, self.c_base * self.base**2)
        self.blocks = nn.Sequential(*[UpBlock(stage_channels(c, i), stage_channels(c, i - 1))
                                      for i in range(n, 0, -1)])
        self.out = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                 conv3x3(c, cfg.img_channels), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.fc(self.join(z, labels)).view(-1, self.c_base, self.base, self.base)  # (B, c_n, base, base)
        return self.out(self.blocks(x))  # (B, C, R, R) in [-1, 1]


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = channels(cfg)
        _, n = octaves(cfg.img_resolution)
        self.label_plane = LabelPlane(cfg) if input_conditioned(cfg) else None
        c_in = cfg.img_channels + (1 if self.label_plane is not None else 0)
        downs = [DownBlock(c_in, c, first=True)]
        downs += [DownBlock(stage_channels(c, i - 1), stage_channels(c, i)) for i in range(1, n)]
        c_top = stage_channels(c, n)
        self.blocks = nn.Sequential(*downs, DownBlock(stage_channels(c, n - 1), c_top, down=False),
                                    nn.ReLU(inplace=True))
        self.head = DiscriminatorHead(c_top, cfg)

    def forward(self, img: torch.Tensor, labels: torch.Tensor | None = None):
        if self.label_plane is not None:
            img = self.label_plane(img, labels)  # (B, C+1, R, R)
        # Mean over positions: SNGAN sums, which scales the logit with the image area and, without
        # spectral norm, starts D saturated. Features (B, c_n).
        return self.head(self.blocks(img).mean(dim=(2, 3)), labels)
