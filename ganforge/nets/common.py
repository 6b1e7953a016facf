"""Pieces every architecture shares: how the class label enters G and D, spectral norm, and how
the convolutional nets' depth and channel widths follow the resolution."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm

from ganforge.config import CLASSIFYING, CONV_RESOLUTIONS, PROJECTING, ModelConfig
from ganforge.errors import GanforgeError

# Channels double per octave below full resolution up to this many doublings (8x the
# full-resolution count), then stay flat: uncapped, a 128 px model would carry 32x at 4x4 and its
# low-resolution convolutions would dominate the cost (the square of the channel count) for little
# gain; capped, each octave above 32 px costs about as much as the octave below it.
MAX_DOUBLINGS = 3


def octaves(resolution: int) -> tuple[int, int]:
    """(base, n): the convolutional nets start (G) or end (D) at a base x base map and take n 2x
    steps to the image: 28 = 7 * 2^2 (the digit nets), every other side 4 * 2^n."""
    base = 7 if resolution % 7 == 0 else 4
    n = (resolution // base).bit_length() - 1
    if resolution not in CONV_RESOLUTIONS or base << n != resolution:
        raise GanforgeError(f"the convolutional nets take resolutions "
                            f"{', '.join(map(str, CONV_RESOLUTIONS))} (got {resolution})")
    return base, n


def stage_channels(c: int, i: int) -> int:
    """Channels i octaves below full resolution, for c channels at full resolution."""
    return c << min(i, MAX_DOUBLINGS)


class LabelJoin(nn.Module):
    """G's input: z joined with a learned embedding of y, for every conditioning type, and with
    the signs of z's first `latent_bits` entries (+-1) when the model asks for them.

    (B, z_dim), (B,) -> (B, z_dim + embed_dim + latent_bits); the identity for unconditional
    models without latent bits. Labels may also be class weights (B, K): the embedding is then
    their weighted mix, which is how the generator is walked smoothly from one class to another.

    Why the signs: G is a continuous map, so from one connected noise space its images form one
    connected set, and data in separate pieces (digits lighter and darker than their ground,
    never alike) gets images on the band between them. A step in G's input lets it put the pieces
    on the two sides of z_i = 0 instead (Khayatkhoei et al. 2018 use one generator a piece).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.num_classes, cfg.z_dim) if cfg.conditional else None
        if self.embed is not None:
            # Class vectors of norm ~1 (like a one-hot code) beside z of norm ~sqrt(z_dim): with
            # N(0, 1) embeddings the class dominates G's first layer and G learns to ignore z,
            # drawing one digit per class (intra-class mode collapse).
            nn.init.normal_(self.embed.weight, std=cfg.z_dim**-0.5)
        self.bits = cfg.latent_bits
        self.out_dim = cfg.z_dim * (2 if cfg.conditional else 1) + self.bits

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        parts = [z]
        if self.embed is not None:
            # class weights (B, K) @ (K, z_dim), or the class's own row
            parts.append(labels @ self.embed.weight if labels.is_floating_point() else self.embed(labels))
        if self.bits:
            parts.append(torch.where(z[:, :self.bits] > 0, 1.0, -1.0).to(z.dtype))
        return torch.cat(parts, dim=1) if len(parts) > 1 else z


class DiscriminatorHead(nn.Module):
    """Features (B, F) -> realness logits (B,) and, for ACGAN, class logits (B, K).

    `projection` adds <embed(y), features> to the logit (Miyato & Koyama 2018): the class enters
    as an inner product rather than as extra input, which trains faster and keeps D's features
    shared across classes. `acgan` adds a K-way classifier on the same features (Odena et al. 2017);
    `projection+classifier` has both, the classifier learning real images' classes only (see Game).
    `input` conditioning happens before the features (each net joins y to its input), so the head
    is then a plain linear layer.
    """

    def __init__(self, features: int, cfg: ModelConfig):
        super().__init__()
        self.linear = nn.Linear(features, 1)
        use = cfg.conditioning if cfg.conditional else None
        self.embed = nn.Embedding(cfg.num_classes, features) if use in PROJECTING else None
        if self.embed is not None:
            # On the scale of `linear` (U(+-1/sqrt(F)), PyTorch's Linear init): Embedding's N(0, 1)
            # would make the initial class term sqrt(F) times the rest of the logit, so D would
            # start out saturated on a random class match.
            bound = features**-0.5
            nn.init.uniform_(self.embed.weight, -bound, bound)
        self.classifier = nn.Linear(features, cfg.num_classes) if use in CLASSIFYING else None

    def forward(self, h: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.linear(h).squeeze(1)
        if self.embed is not None:
            logits = logits + (self.embed(labels) * h).sum(dim=1)
        class_logits = self.classifier(h) if self.classifier is not None else None
        return logits, class_logits


class LabelPlane(nn.Embedding):
    """D's input conditioning for convolutional nets: one learned (R, R) plane per class, joined
    to the image as an extra channel. (B, C, R, R), (B,) -> (B, C + 1, R, R)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg.num_classes, cfg.img_resolution**2)

    def forward(self, img: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        r = img.shape[-1]
        return torch.cat([img, super().forward(labels).view(-1, 1, r, r)], dim=1)


def input_conditioned(cfg: ModelConfig) -> bool:
    """Whether D must join y to its input (rather than using it in the head)."""
    return cfg.conditional and cfg.conditioning == "input"


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectrally normalise every linear, convolution and embedding weight of `module` in place."""
    for name, child in module.named_children():
        if isinstance(child, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)):
            setattr(module, name, spectral_norm(child))
        else:
            apply_spectral_norm(child)
    return module
