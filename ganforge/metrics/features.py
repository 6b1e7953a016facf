"""The feature network: a small CNN digit classifier trained on the 60,000 MNIST training digits
(`scripts/train_digit_classifier.py`), shipped as `ganforge/assets/digit_classifier.safetensors`.

Its 64-d penultimate layer plays the role Inception-v3's pool features play for photos (FID, KID,
precision/recall, density/coverage) and its softmax the role of Inception's class posterior
(digit_score, class accuracy). Being a *digit* classifier, it sees every image as a digit: on
other data its features still separate images, but its class predictions mean nothing.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file

from ganforge.data import resize, to_float, to_grey
from ganforge.errors import GanforgeError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CLASSIFIER_PATH = ASSETS / "digit_classifier.safetensors"
FEATURE_DIM = 64
NUM_CLASSES = 10
RESOLUTION = 28
BATCH = 1000


class DigitClassifier(nn.Module):
    """28x28 grey digit in [-1, 1] -> 64-d feature -> 10 logits."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(
            # A strided first layer keeps it cheap: training fits in minutes on two CPU cores.
            nn.Conv2d(1, 32, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(32), nn.ReLU(),  # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 64, 7, 7)
            nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Flatten(),  # (B, 3136)
            nn.Linear(64 * 7 * 7, FEATURE_DIM),  # the features: pre-activation, so full-rank
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.2), nn.Linear(FEATURE_DIM, NUM_CLASSES))
        # Set after training so that training digits' features have unit mean variance: figures
        # such as KID's cubic kernel (a.b / D + 1)^3 then work on values of order one.
        self.register_buffer("feature_scale", torch.ones(()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (B, 64) and class logits (B, 10)."""
        raw = self.trunk(x)
        return raw / self.feature_scale, self.head(raw)


@functools.lru_cache(maxsize=1)
def load_classifier() -> DigitClassifier:
    """The bundled classifier in eval mode (loaded once per process)."""
    if not CLASSIFIER_PATH.is_file():
        raise GanforgeError(f"{CLASSIFIER_PATH} is missing; reinstall ganforge or run "
                            "scripts/train_digit_classifier.py")
    net = DigitClassifier()
    net.load_state_dict(load_file(CLASSIFIER_PATH), strict=True)
    return net.eval().requires_grad_(False).to(memory_format=torch.channels_last)


def to_digit_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) or (N, H, W) -> uint8 (N, 1, 28, 28): RGB to luma, resized by area/bilinear."""
    if images.dtype != torch.uint8:
        raise GanforgeError(f"images must be uint8 in 0..255 (got {images.dtype})")
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise GanforgeError(f"images must have shape (N, H, W), (N, 1, H, W) or (N, 3, H, W) "
                            f"(got {tuple(images.shape)})")
    if images.shape[1] == 3:
        images = to_grey(images)
    return resize(images, RESOLUTION)


@torch.no_grad()
def embed(images: torch.Tensor, net: DigitClassifier | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Features float32 (N, 64) and class probabilities float32 (N, 10) of uint8 images."""
    net = net or load_classifier()
    x = to_digit_input(images.cpu()).contiguous(memory_format=torch.channels_last)  # faster CPU convs
    feats, probs = [], []
    for i in range(0, len(x), BATCH):
        f, logits = net(to_float(x[i:i + BATCH]))
        feats.append(f)
        probs.append(torch.softmax(logits, dim=1))
    if not feats:
        raise GanforgeError("no images to evaluate")
    return torch.cat(feats), torch.cat(probs)
