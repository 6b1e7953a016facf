"""A DCGAN-style convolutional pair whose depth follows the resolution: one 2x transposed
convolution (G) or strided convolution (D) per octave between a base map and the image, the base
being 7x7 for 28 px (the digit nets) and 4x4 for 8, 16, 32, 64 and 128 px (see nets.common.octaves).

With c = width and n octaves, the stage i octaves below full resolution has c * 2^min(i, 3)
channels (nets.common.stage_channels):
G: Linear to (c_n, base, base) -> BN, ReLU -> n - 1 times [ConvT 4x4/2 -> BN -> ReLU, then
`generator_depth` times 3x3 stride-1 Conv -> BN -> ReLU at its width], halving the channels down to
2c -> ConvT 4x4/2 to (C, R, R) -> tanh.
D: n strided 4x4 convolutions with LeakyReLU(0.2) (c, 2c, 4c, 8c, 8c, ...), each followed by
`discriminator_depth` 3x3 stride-1 convolutions (with LeakyReLU) at its width, then the conditioning
head on the flattened base map. D has no BatchNorm, so its output for one image does not depend on
the rest of the batch (which gradient penalties and data-parallel training both assume).

With d_depth and g_depth 0 (the classic DCGAN pair; checkpoints from before d_depth or g_depth load
as such) at 28 px this is exactly the original pair (4c at 7x7, 2c at 14x14). Parameters at the
default width 32, RGB, unconditional, depths 0 (G / D): 32 px 0.93M / 0.17M,
64 px 2.0M / 0.69M, 128 px 3.0M / 1.7M. G's forward pass costs 0.02, 0.09 and 0.37 GMAC per image
(D about a third of that): from 64 px on, each octave costs about four times the one below, as
its pixels do, and the channel cap keeps the 4x4 to 16x16 layers from dominating.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.config import ModelConfig
from ganforge.nets.common import DiscriminatorHead, LabelJoin, LabelPlane, input_conditioned, octaves, stage_channels


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.width
        self.base, n = octaves(cfg.img_resolution)
        self.c_base = stage_channels(c, n)
        self.join = LabelJoin(cfg)
        units = self.c_base * self.base**2
        self.fc = nn.Sequential(nn.Linear(self.join.out_dim, units, bias=False),
                                nn.BatchNorm1d(units), nn.ReLU(inplace=True))
        layers = []
        for i in range(n, 1, -1):
            c_in, c_out = stage_channels(c, i), stage_channels(c, i - 1)
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
            for _ in range(cfg.generator_depth):
                layers += [nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(stage_channels(c, 1), cfg.img_channels, 4, 2, 1), nn.Tanh()]
        self.convs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.fc(self.join(z, labels)).view(-1, self.c_base, self.base, self.base)  # (B, c_n, base, base)
        return self.convs(x)  # (B, C, R, R) in [-1, 1]


class FoldedGenerator(nn.Module):
    """A trained `Generator` rewritten for batched inference on a CPU: the same images (to float
    rounding), about 1.5x faster for the 28 px digit G (benchmarks/THROUGHPUT.md, generation).
    A copy of the weights at the time of folding: for a loaded model, not one still training.

    - Each eval-mode BatchNorm is folded away: its scale into the weights before it, its shift
      added after the product. Not as the convolution's bias: oneDNN's transposed convolution
      ran about 40% slower with a bias than without one (2 threads, 2026-11-28).
    - The linear layer's output units are reordered (h, w, c), so its output already is the
      channels-last map the convolutions want, without a layout copy.
    - The last transposed convolution has only C output channels, which oneDNN runs at a few
      GFLOP/s; it becomes one matrix product (B*H*W, c) @ (c, C*16) and a col2im (F.fold).
    """

    def __init__(self, G: Generator):
        super().__init__()
        fc, fc_bn = G.fc[0], G.fc[1]
        convs = list(G.convs)  # [ConvT 4x4/2 or Conv 3x3/1, BN, ReLU] a stage, then ConvT, Tanh
        self.join, self.base, self.c_base = copy.deepcopy(G.join), G.base, G.c_base
        with torch.no_grad():
            scale, shift = _bn_affine(fc_bn)
            hwc = torch.arange(fc.out_features).view(self.c_base, self.base, self.base).permute(1, 2, 0).reshape(-1)
            self.register_buffer("fc_weight", (fc.weight * scale[:, None])[hwc].t().contiguous())
            self.register_buffer("fc_shift", shift[hwc].contiguous())
            self.upsamples = [isinstance(conv, nn.ConvTranspose2d) for conv in convs[:-2:3]]
            for i, up in enumerate(self.upsamples):
                conv, bn = convs[3 * i], convs[3 * i + 1]
                scale, shift = _bn_affine(bn)
                # output channels: dim 1 of a transposed convolution's weight, dim 0 of a convolution's
                weight = conv.weight * (scale[None, :, None, None] if up else scale[:, None, None, None])
                self.register_buffer(f"weight{i}", weight.contiguous(memory_format=torch.channels_last))
                self.register_buffer(f"shift{i}", shift.view(1, -1, 1, 1).clone())
            last = convs[-2]
            self.register_buffer("last_weight", last.weight.reshape(last.in_channels, -1).clone())  # (c, C*16)
            self.register_buffer("last_bias", last.bias.view(1, -1, 1, 1).clone())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.addmm(self.fc_shift, self.join(z, labels), self.fc_weight).relu_()
        x = x.view(-1, self.base, self.base, self.c_base).permute(0, 3, 1, 2)  # channels-last (B, c, h, w)
        for i, up in enumerate(self.upsamples):
            weight = getattr(self, f"weight{i}")
            x = F.conv_transpose2d(x, weight, None, 2, 1) if up else F.conv2d(x, weight, None, 1, 1)
            x = x.add_(getattr(self, f"shift{i}")).relu_()
        n, c, h, w = x.shape
        cols = x.permute(0, 2, 3, 1).reshape(n, h * w, c) @ self.last_weight  # (B, h*w, C*16)
        img = F.fold(cols.transpose(1, 2), (2 * h, 2 * w), 4, padding=1, stride=2)
        return img.add_(self.last_bias).tanh_()  # (B, C, R, R) in [-1, 1]


def _bn_affine(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as y = scale * x + shift, per channel."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.width
        base, n = octaves(cfg.img_resolution)
        self.label_plane = LabelPlane(cfg) if input_conditioned(cfg) else None
        widths = [cfg.img_channels + (1 if self.label_plane is not None else 0)]
        widths += [stage_channels(c, i) for i in range(n)]  # after each halving: c, 2c, 4c, 8c, 8c
        layers = []
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            for _ in range(cfg.discriminator_depth):
                layers += [nn.Conv2d(c_out, c_out, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.head = DiscriminatorHead(widths[-1] * base**2, cfg)

    def forward(self, img: torch.Tensor, labels: torch.Tensor | None = None):
        if self.label_plane is not None:
            img = self.label_plane(img, labels)  # (B, C+1, R, R)
        return self.head(self.convs(img).flatten(1), labels)  # features (B, c_last * base^2)
