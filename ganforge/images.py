"""Image sheets and line plots written with Pillow alone (no plotting dependency)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganforge.checkpoint import atomic_write

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


def to_pil(array: np.ndarray, scale: int = 1) -> Image.Image:
    img = Image.fromarray(array)
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST) if scale > 1 else img


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def save_grid(path: Path, images: torch.Tensor, ncol: int, scale: int = 1) -> None:
    atomic_write(Path(path), png_bytes(to_pil(grid(images, ncol), scale)))


COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def line_plot(series: dict[str, tuple[Sequence[float], Sequence[float]]], title: str,
              size: tuple[int, int] = (640, 360)) -> Image.Image:
    """A simple line chart of named (x, y) series with axes, min/max labels and a legend."""
    w, h = size
    left, right, top, bottom = 60, 16, 28, 36
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    draw.text((left, 8), title, fill="black")
    pts = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys) if math.isfinite(y)]
    if not pts:
        draw.text((left, h // 2), "no data yet", fill="gray")
        return img
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    sx = lambda x: left + (x - x0) / (x1 - x0) * (w - left - right)  # noqa: E731
    sy = lambda y: h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)  # noqa: E731
    draw.rectangle([left, top, w - right, h - bottom], outline="black")
    draw.text((4, top), f"{y1:.3g}", fill="black")
    draw.text((4, h - bottom - 10), f"{y0:.3g}", fill="black")
    draw.text((left, h - bottom + 4), f"{x0:g}", fill="black")
    draw.text((w - right - 40, h - bottom + 4), f"{x1:g}", fill="black")
    for i, (name, (xs, ys)) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        line = [(sx(x), sy(y)) for x, y in zip(xs, ys) if math.isfinite(y)]
        if len(line) > 1:
            draw.line(line, fill=color, width=2)
        elif line:
            draw.ellipse([line[0][0] - 2, line[0][1] - 2, line[0][0] + 2, line[0][1] + 2], fill=color)
        draw.text((left + 8 + 110 * i, h - 16), f"— {name}", fill=color)
    return img
