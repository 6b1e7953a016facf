"""The in-memory image data set every source produces, and pixel conversions.

Images are held as one uint8 tensor `[N, C, H, W]`; a batch is gathered by indexing and
normalised to [-1, 1] in one vectorised step, so there is no per-sample Python work.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1] (the range of G's tanh output)."""
    return images.float().mul_(2 / 255).sub_(1)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounding to nearest."""
    return images.detach().add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def to_grey(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> uint8 (N, 1, H, W) by ITU-R BT.601 luma, as PIL's convert("L")."""
    w = torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)
    return (images.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def resize(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, resolution, resolution): area-averaged when shrinking,
    bilinear when growing; unchanged when already that size."""
    if images.shape[-2:] == (resolution, resolution):
        return images
    mode = "area" if resolution < images.shape[-1] else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    resized = F.interpolate(images.float(), size=(resolution, resolution), mode=mode, **kwargs)
    return resized.round().clamp(0, 255).to(torch.uint8)


@dataclass
class ImageDataset:
    """N images; with `mirror`, 2N: index i >= N is image i - N flipped left to right (--mirror).
    The flipped half is an index range rather than a second copy, so memory stays N images while
    BatchOrder's permutations cover both halves (an epoch is a pass over all 2N)."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    class_names: list[str]
    source: str  # what was loaded, for messages and config.json
    mirror: bool = False

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if len(self.images) == 0:
            raise GanforgeError(f"no images found in {self.source}; point --data at a folder "
                                "of images or at MNIST-family IDX files")
        if self.labels.shape != (len(self.images),):
            raise ValueError("labels must be int64 (N,) matching the images")
        if self.class_names and not 0 <= int(self.labels.min()) <= int(self.labels.max()) < len(self.class_names):
            raise GanforgeError(f"labels in {self.source} fall outside 0..{len(self.class_names) - 1}")

    def __len__(self) -> int:
        return len(self.images) * (2 if self.mirror else 1)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def img_channels(self) -> int:
        return self.images.shape[1]

    @property
    def img_resolution(self) -> int:
        return self.images.shape[-1]

    def to(self, device: torch.device | str) -> ImageDataset:
        return ImageDataset(self.images.to(device), self.labels.to(device), self.class_names, self.source,
                            self.mirror)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [-1, 1] as float32 (B, C, H, W) and their labels (B,)."""
        if not self.mirror:
            return to_float(self.images[index]), self.labels[index]
        flipped = index >= len(self.images)  # (B,)
        source = index - flipped * len(self.images)
        img = to_float(self.images[source])
        return torch.where(flipped.view(-1, 1, 1, 1), img.flip(-1), img), self.labels[source]
