"""Files people look at, from uint8 images: sheets (grids), one PNG per image, .npz arrays and
animated GIFs. Every file is written atomically."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.errors import GanforgeError
from ganforge.files import atomic_write

PAD = 2


def grid(images: torch.Tensor, ncol: int) -> np.ndarray:
    """uint8 (N, C, H, W) -> one uint8 (H', W') or (H', W', 3) sheet, row-major, ncol per row."""
    n, c, h, w = images.shape
    nrow = math.ceil(n / ncol)
    sheet = np.zeros((nrow * (h + PAD) + PAD, ncol * (w + PAD) + PAD, c), dtype=np.uint8)
    arr = images.cpu().numpy().transpose(0, 2, 3, 1)  # (N, H, W, C)
    for i in range(n):
        r, k = divmod(i, ncol)
        sheet[PAD + r * (h + PAD): PAD + r * (h + PAD) + h, PAD + k * (w + PAD): PAD + k * (w + PAD) + w] = arr[i]
    return sheet[..., 0] if c == 1 else sheet


def to_pil(image: np.ndarray | torch.Tensor, scale: int = 1) -> Image.Image:
    """A uint8 image as PIL: an array (H, W) or (H, W, 3), or a tensor (C, H, W); `scale` enlarges
    each pixel to a scale x scale block."""
    if isinstance(image, torch.Tensor):
        image = image.cpu()
        image = image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()
    img = Image.fromarray(image)
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST) if scale > 1 else img


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def save_grid(path: Path, images: torch.Tensor, ncol: int, scale: int = 1) -> None:
    atomic_write(Path(path), png_bytes(to_pil(grid(images, ncol), scale)))


def write_images(out: Path, images: torch.Tensor, labels: torch.Tensor | None, ncol: int) -> Path:
    """Write uint8 images (N, C, H, W) as one grid (`.png`, ncol per row), arrays (`.npz`: `images`
    uint8 (N, H, W) or (N, C, H, W), `labels` int64 (N,)) or one PNG each (a directory, files
    `<label>_<index>.png`)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".png":
        save_grid(out, images, ncol)
    elif suffix == ".npz":
        arrays = {"images": (images[:, 0] if images.shape[1] == 1 else images).numpy()}
        if labels is not None:
            arrays["labels"] = labels.numpy().astype(np.int64)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write(out, buf.getvalue())
    elif suffix:
        raise GanforgeError(f"--out {out}: use a .png file, a .npz file or a directory")
    else:
        width = len(str(len(images) - 1))
        for i, img in enumerate(images):
            label = int(labels[i]) if labels is not None else 0
            atomic_write(out / f"{label}_{i:0{width}d}.png", png_bytes(to_pil(img)))
    return out


def write_gif(out: Path, images: torch.Tensor, frame_ms: int, scale: int = 1) -> None:
    """uint8 images (N, C, H, W) as the frames of an endlessly looping GIF."""
    frames = [to_pil(img, scale) for img in images]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    atomic_write(Path(out), buf.getvalue())
