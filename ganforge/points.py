"""Files people look at from 2-D points: scatter plots (PNG), `.npz` and `.csv` point files.

The counterpart of `outputs.py` for the toy net: a run on points has no images, so its progress
"grids" and its sheet are scatter plots of generated points over the data, drawn with Pillow and
NumPy only (no plotting library). Every file is written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganforge.data import is_points
from ganforge.errors import GanforgeError
from ganforge.files import atomic_write
from ganforge.generator import GAN

SCATTER_SIZE = 480  # pixels per side
SCATTER_POINTS = 2000  # generated points in a progress plot
MARGIN = 1.15  # the view is the data's extent times this, so the outer modes are not on the edge
BACKGROUND, AXES, REAL, FAKE = (255, 255, 255), (225, 225, 225), (175, 175, 175), (31, 100, 200)
REFERENCE_SHOWN = 5000  # data points drawn behind the samples (the first ones: an i.i.d. subset)


def training_points(gan: GAN) -> str:
    """The points source a model of 2-D points was trained on, as its configuration names it;
    refused unless that is a points source: a checkpoint may come from anyone, and any other path
    would have ganforge read (and cache) whatever folder it names."""
    data = gan.config.data if gan.config is not None else None
    if not is_points(data):
        raise GanforgeError(f"this model's data ({str(data)[:80]!r}) is not 2-D points (ring8, grid25, spiral, "
                            "moons or a .csv file); name the points to compare with: --reference SOURCE")
    return data


@torch.no_grad()
def sample_points(gan: GAN, n: int, seed: int | None, batch_size: int = 10_000) -> torch.Tensor:
    """n generated points as float32 (n, 2) on the CPU; the same seed gives the same points."""
    if not isinstance(n, int) or n <= 0:
        raise GanforgeError(f"the number of points must be a positive integer (got {n!r})")
    z = gan.noise(n, seed)
    return torch.cat([gan.generate(z[i:i + batch_size]).float().cpu() for i in range(0, n, batch_size)])


def view_extent(reference: torch.Tensor) -> float:
    """Half the side of the square view centred at 0 that shows `reference` (N, 2) with a margin."""
    finite = reference[torch.isfinite(reference).all(1)]
    return float(finite.abs().max()) * MARGIN if len(finite) else 1.0


def _pixels(points: np.ndarray, extent: float, size: int) -> np.ndarray:
    """(N, 2) plane coordinates -> (M, 2) integer pixel (column, row) of the points inside the
    view; y grows upwards in the plane and downwards in the picture."""
    col = (points[:, 0] / extent + 1) * (size - 1) / 2
    row = (1 - points[:, 1] / extent) * (size - 1) / 2
    pixel = np.stack([col, row], 1)
    inside = np.isfinite(pixel).all(1) & (pixel >= 0).all(1) & (pixel <= size - 1).all(1)
    return np.rint(pixel[inside]).astype(np.int64)


def scatter(points: torch.Tensor, reference: torch.Tensor | None = None, size: int = SCATTER_SIZE,
            extent: float | None = None) -> Image.Image:
    """An RGB scatter plot of `points` (N, 2) in blue over `reference` (the data) in grey, on a
    square view of [-extent, extent]² (by default the reference's extent, else the points')."""
    if extent is None:
        extent = view_extent(reference if reference is not None else points)
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    centre = (size - 1) // 2
    canvas[centre, :], canvas[:, centre] = AXES, AXES
    layers = [(reference[:REFERENCE_SHOWN], REAL)] if reference is not None else []
    for layer, colour in layers + [(points, FAKE)]:
        pixel = _pixels(layer.detach().cpu().double().numpy(), extent, size)
        for dc in (-1, 0, 1):  # 3x3 dots: one pixel is too faint at this size
            for dr in (-1, 0, 1):
                canvas[np.clip(pixel[:, 1] + dr, 0, size - 1), np.clip(pixel[:, 0] + dc, 0, size - 1)] = colour
    img = Image.fromarray(canvas)
    ImageDraw.Draw(img).text((4, 2), f"±{extent:.3g}", fill=(120, 120, 120))
    return img


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def points_png(gan: GAN, seed: int, reference: torch.Tensor, n: int = SCATTER_POINTS) -> bytes:
    """A progress plot: n points from the noise of `seed` over the data `reference`."""
    return png_bytes(scatter(sample_points(gan, n, seed), reference.cpu()))


def csv_bytes(points: torch.Tensor) -> bytes:
    """x,y header and one point per line, with float32's 9 significant digits (round-trips)."""
    lines = ["x,y"] + [f"{x:.9g},{y:.9g}" for x, y in points.tolist()]
    return ("\n".join(lines) + "\n").encode()


def write_points(out: str | Path, points: torch.Tensor, reference: torch.Tensor | None = None) -> Path:
    """Write points (N, 2) as `.npz` (array `points`, float32 (N, 2)), `.csv` (x,y) or `.png`
    (a scatter plot over `reference`)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".npz":
        buf = io.BytesIO()
        np.savez_compressed(buf, points=points.detach().cpu().numpy().astype(np.float32))
        data = buf.getvalue()
    elif suffix == ".csv":
        data = csv_bytes(points)
    elif suffix == ".png":
        data = png_bytes(scatter(points, reference))
    else:
        raise GanforgeError(f"--out {out}: a model of 2-D points writes a .npz, .csv or .png file")
    atomic_write(out, data)
    return out
