"""Network families. Each file defines `Generator(cfg)` and `Discriminator(cfg)`:
tensors in, images or logits out; nothing here knows about training."""

from __future__ import annotations

import dataclasses

import torch.nn as nn

from ganforge.config import ModelConfig
from ganforge.errors import GanforgeError
from ganforge.nets import dcgan, mlp, resnet, toy
from ganforge.nets.common import apply_spectral_norm

FAMILIES = {"mlp": mlp, "dcgan": dcgan, "resnet": resnet, "toy": toy}


def _resolved(cfg: ModelConfig) -> ModelConfig:
    if cfg.num_classes is None:
        raise GanforgeError("num_classes is not set: it follows the data, so load the data first "
                            "(ganforge.training.resolve) or give num_classes (0 = unconditional)")
    return cfg


def build_generator(cfg: ModelConfig) -> nn.Module:
    return FAMILIES[cfg.net].Generator(_resolved(cfg))


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    cfg = dataclasses.replace(cfg, width=cfg.discriminator_width)
    D = FAMILIES[cfg.net].Discriminator(_resolved(cfg))
    return apply_spectral_norm(D) if cfg.spectral_norm else D
