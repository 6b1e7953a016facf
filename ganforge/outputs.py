"""Files people look at, from uint8 images: sheets (grids), one PNG per image, .npz arrays and
animated GIFs. Every file is written atomically."""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path
from typing import Iterable

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


def check_out(out: Path) -> str:
    """Check an --out for images before any work: a `.png` or `.npz` file in an existing directory,
    or a directory that exists or whose parent does (ganforge creates no other directories).
    Returns the kind: "png", "npz" or "dir"."""
    out = Path(out)
    kind = {".png": "png", ".npz": "npz", "": "dir"}.get(out.suffix.lower())
    if kind is None:
        raise GanforgeError(f"--out {out}: use a .png file, a .npz file or a directory")
    parent = out.parent if kind != "dir" or not out.is_dir() else out
    if not parent.is_dir():
        raise GanforgeError(f"--out {out}: the directory {parent} does not exist; create it first")
    if kind == "dir" and out.exists() and not out.is_dir():
        raise GanforgeError(f"--out {out} is a file; give a directory (or FILE.png / FILE.npz)")
    return kind


def write_images(out: Path, images: torch.Tensor, labels: torch.Tensor | None, ncol: int) -> Path:
    """Write uint8 images (N, C, H, W) as one grid (`.png`, ncol per row), arrays (`.npz`: `images`
    uint8 (N, H, W) or (N, C, H, W), `labels` int64 (N,)) or one PNG each (a directory, files
    `<label>_<index>.png`)."""
    out = Path(out)
    kind = check_out(out)
    if kind == "png":
        save_grid(out, images, ncol)
    elif kind == "npz":
        arrays = {"images": (images[:, 0] if images.shape[1] == 1 else images).numpy()}
        if labels is not None:
            arrays["labels"] = labels.numpy().astype(np.int64)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write(out, buf.getvalue())
    else:
        write_image_dir(out, [(images, labels)], len(images))
    return out


def write_image_dir(out: Path, chunks: Iterable[tuple[torch.Tensor, torch.Tensor | None]], n: int) -> Path:
    """One PNG per image, `<label>_<index>.png`, of `n` images arriving as chunks of (uint8 images,
    labels or None), each written as it comes: memory holds one chunk. Every file is an atomic
    rename, which replaces a link planted in `out` rather than writing through it."""
    out = Path(out)
    check_out(out)
    try:
        out.mkdir(exist_ok=True)
    except OSError as e:
        raise GanforgeError(f"cannot create {out}: {e.strerror or e}; choose a writable --out") from None
    width, i = len(str(n - 1)), 0
    for images, labels in chunks:
        for k, img in enumerate(images):
            label = int(labels[k]) if labels is not None else 0
            atomic_write(out / f"{label}_{i:0{width}d}.png", png_bytes(to_pil(img)))
            i += 1
    return out


MAX_GIF_BYTES = 1 << 30  # the frames a GIF is built from are all held in memory at once
MAX_GIF_HOLD_MS = 655_350  # GIF stores a frame's delay in 16 bits of 10 ms


def check_gif_size(frames: int, height: int, width: int, channels: int, remedy: str) -> None:
    """Refuse a GIF whose frames would not fit the memory budget, naming the remedy."""
    size = frames * height * width * channels
    if size > MAX_GIF_BYTES:
        raise GanforgeError(f"{frames} frames of {width}x{height} pixels would take {size / 2**30:.1f} GiB "
                            f"of memory, over the {MAX_GIF_BYTES / 2**30:g} GiB limit; {remedy}")


def write_gif(out: Path, images: torch.Tensor, frame_ms: int, scale: int = 1) -> None:
    """uint8 images (N, C, H, W) as the frames of an endlessly looping GIF. Identical neighbours
    become one frame shown for their summed time (GIF writers merge them), which must fit GIF's
    delay field."""
    n, c, h, w = images.shape
    check_gif_size(n, h * scale, w * scale, c, "use fewer frames or a smaller --scale")
    same = (images[1:] == images[:-1]).flatten(1).all(1).tolist()  # frame i + 1 repeats frame i
    run = longest = 1
    for repeat in same:
        run = run + 1 if repeat else 1
        longest = max(longest, run)
    if longest * frame_ms > MAX_GIF_HOLD_MS:
        raise GanforgeError(f"{longest} identical frames in a row would show for {longest * frame_ms:,} ms, "
                            f"over GIF's limit of {MAX_GIF_HOLD_MS:,} ms for one picture; lower --frame-ms")
    frames = [to_pil(img, scale) for img in images]
    buf = io.BytesIO()
    try:
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    except (OverflowError, struct.error):  # frames that differ only before quantisation merged too
        raise GanforgeError(f"frames so alike that the GIF shows them as one picture for over "
                            f"{MAX_GIF_HOLD_MS:,} ms, GIF's limit; lower --frame-ms") from None
    atomic_write(Path(out), buf.getvalue())
