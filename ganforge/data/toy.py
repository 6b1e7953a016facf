"""Toy two-dimensional data: the game where every sample can be seen and every mode counted.

Four built-in sources (`TOY_SOURCES`), each drawn once as a fixed sample so that a seed names
one data set exactly, like a file on disk:

| source | what | centres | sigma | extent |
|---|---|---|---|---|
| `ring8` | 8 Gaussians evenly on a circle of radius 2 | (2 cos 2πk/8, 2 sin 2πk/8) | 0.02 | ±2 |
| `grid25` | 25 Gaussians on the grid {-4,-2,0,2,4}² | (2i-4, 2j-4) | 0.05 | ±4 |
| `spiral` | one noisy Archimedean spiral, 1.5 turns | — | — | ±3 |
| `moons` | two interleaved noisy half-circles | — | — | ±3 by ±1.5 |

The mixtures are the standard mode-collapse benchmarks. `grid25` is exactly the 2D grid of PacGAN
(Lin et al. 2018), as set in its released code (synthetic_data_experiments/2DGrid_GAN&PacGAN/
config.py: means itertools.product(range(-4, 5, 2), repeat=2), variance 0.05² I). `ring8` uses
radius 2 and sigma 0.02; PacGAN's code (2DRing_GAN&PacGAN/config.py) uses radius 1 and sigma 0.01,
the same picture scaled by 2, so mode counts within 3 sigma are identical. The shapes are not
mixtures: no mode centres, so they are measured by the sliced Wasserstein distance only.

`load_points_csv` reads your own points (two numeric columns, optional `x,y` header).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganforge.errors import GanforgeError

TOY_SOURCES = ("ring8", "grid25", "spiral", "moons")
DEFAULT_POINTS = 100_000  # PacGAN's fixed training sample (config.py: num_sample 100000)
MIN_POINTS = 10  # fewer is not a distribution one can learn or measure a distance to
MAX_POINTS = 10_000_000  # 80 MB as float32 pairs: far above any toy need, below a memory blow-up
MAX_CSV_BYTES = 512 << 20  # 10 million rows of two printed floats fit in well under this
FLOAT32_MAX = float(np.finfo(np.float32).max)

RING_RADIUS, RING_SIGMA = 2.0, 0.02
GRID_STEP, GRID_SIGMA = 2.0, 0.05
SPIRAL_TURNS, SPIRAL_RADIUS, SPIRAL_NOISE = 1.5, 3.0, 0.1
MOONS_SCALE, MOONS_NOISE = 2.0, 0.1  # scikit-learn's make_moons, centred, scaled to about ±3


@dataclass
class PointDataset:
    """A fixed set of 2-D points in memory; the toy counterpart of `ImageDataset`.

    `centres` (K, 2) and `sigma` are set for Gaussian mixtures only: they are what lets the
    measures count modes. The points are unconditional, so every label is 0 and there are no
    classes.
    """

    points: torch.Tensor  # float32 (N, 2)
    source: str  # what was loaded, for messages and config.json
    centres: torch.Tensor | None = None  # float32 (K, 2), mixtures only
    sigma: float | None = None  # the components' common standard deviation, mixtures only

    def __post_init__(self) -> None:
        if self.points.dtype != torch.float32 or self.points.ndim != 2 or self.points.shape[1] != 2:
            raise ValueError(f"points must be float32 (N, 2), got {self.points.dtype} "
                             f"{tuple(self.points.shape)}")
        if (self.centres is None) != (self.sigma is None):
            raise ValueError("centres and sigma go together: both for a mixture, neither for a shape")
        if self.centres is not None and (self.centres.ndim != 2 or self.centres.shape[1] != 2
                                         or not self.sigma > 0):
            raise ValueError(f"centres must be (K, 2) and sigma > 0, got {tuple(self.centres.shape)}, "
                             f"{self.sigma}")

    def __len__(self) -> int:
        return len(self.points)

    @property
    def num_classes(self) -> int:
        return 0

    @property
    def class_names(self) -> list[str]:
        return []

    def to(self, device: torch.device | str) -> PointDataset:
        centres = None if self.centres is None else self.centres.to(device)
        return PointDataset(self.points.to(device), self.source, centres, self.sigma)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points as float32 (B, 2) and int64 zero labels (B,), as `ImageDataset.batch` returns."""
        points = self.points[index]
        return points, torch.zeros(len(points), dtype=torch.int64, device=points.device)


def ring_centres(k: int = 8, radius: float = RING_RADIUS) -> torch.Tensor:
    """(k, 2) centres evenly on a circle, the first at angle 0."""
    angle = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    return (radius * torch.stack([angle.cos(), angle.sin()], 1)).float()


def grid_centres(side: int = 5, step: float = GRID_STEP) -> torch.Tensor:
    """(side², 2) centres on a square grid centred at 0: {-4,-2,0,2,4}² for the defaults."""
    axis = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * step
    return torch.cartesian_prod(axis, axis).float()


def _mixture(centres: torch.Tensor, sigma: float, n: int, gen: torch.Generator) -> torch.Tensor:
    # Equal weights: the component of each point is uniform on 0..K-1.
    component = torch.randint(len(centres), (n,), generator=gen)
    return centres[component] + sigma * torch.randn(n, 2, generator=gen)


def _spiral(n: int, gen: torch.Generator) -> torch.Tensor:
    # Archimedean spiral r = b theta. Arc length grows as theta², so theta = theta_max sqrt(u)
    # with u uniform spreads points about evenly along the curve. Neighbouring arms lie
    # 2 pi b = SPIRAL_RADIUS / SPIRAL_TURNS = 2 apart, twenty noise widths.
    theta_max = 2 * math.pi * SPIRAL_TURNS
    theta = theta_max * torch.rand(n, generator=gen, dtype=torch.float64).sqrt()
    r = SPIRAL_RADIUS * theta / theta_max
    curve = torch.stack([r * theta.cos(), r * theta.sin()], 1)
    return (curve + SPIRAL_NOISE * torch.randn(n, 2, generator=gen, dtype=torch.float64)).float()


def _moons(n: int, gen: torch.Generator) -> torch.Tensor:
    # scikit-learn's make_moons: upper (cos t, sin t) and lower (1 - cos t, 1/2 - sin t), t in
    # [0, pi]; the pair spans [-1, 2] x [-1/2, 1], so centre it at (1/2, 1/4) and scale by 2.
    t = math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
    lower = torch.rand(n, generator=gen) < 0.5
    x = torch.where(lower, 1 - t.cos(), t.cos())
    y = torch.where(lower, 0.5 - t.sin(), t.sin())
    curve = MOONS_SCALE * (torch.stack([x, y], 1) - torch.tensor([0.5, 0.25], dtype=torch.float64))
    return (curve + MOONS_NOISE * torch.randn(n, 2, generator=gen, dtype=torch.float64)).float()


def toy_dataset(name: str, n: int = DEFAULT_POINTS, seed: int = 0) -> PointDataset:
    """Draw the fixed sample of `n` points of source `name`; the same (name, n, seed) gives the
    same points on every CPU run."""
    if name not in TOY_SOURCES:
        raise GanforgeError(f"unknown toy source {name!r}; choose one of {', '.join(TOY_SOURCES)}")
    if not MIN_POINTS <= n <= MAX_POINTS:
        raise GanforgeError(f"toy sample size n={n} is outside {MIN_POINTS}..{MAX_POINTS:,}; "
                            f"the default is {DEFAULT_POINTS:,}")
    gen = torch.Generator().manual_seed(seed)
    source = f"{name} (n={n}, seed={seed})"
    if name == "ring8":
        centres = ring_centres()
        return PointDataset(_mixture(centres, RING_SIGMA, n, gen), source, centres, RING_SIGMA)
    if name == "grid25":
        centres = grid_centres()
        return PointDataset(_mixture(centres, GRID_SIGMA, n, gen), source, centres, GRID_SIGMA)
    return PointDataset(_spiral(n, gen) if name == "spiral" else _moons(n, gen), source)


def load_points(spec: str) -> PointDataset:
    """A toy source by name (its default sample), or else the points CSV at path `spec`."""
    return toy_dataset(spec) if spec in TOY_SOURCES else load_points_csv(spec)


def _is_header(fields: list[str]) -> bool:
    return [f.strip().strip("\"'").lower() for f in fields] == ["x", "y"]


def _parse_rows(path: Path) -> array:
    """The numbers of a points CSV, flattened x0, y0, x1, y1, ...; GanforgeError naming the line
    of the first bad row."""
    values = array("d")
    rows = 0
    with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: tolerate a BOM from Excel
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = line.split(",")
            if len(fields) != 2:
                raise GanforgeError(f"{path} line {number}: found {len(fields)} column(s); a points "
                                    "CSV has exactly two, x,y (one point per line)")
            if not values and _is_header(fields):
                continue
            for field in fields:
                try:
                    v = float(field)
                except ValueError:
                    raise GanforgeError(f"{path} line {number}: {field.strip()!r} is not a number; "
                                        "every row must be two numbers (an optional first line "
                                        "may be the header x,y)") from None
                if not math.isfinite(v) or abs(v) > FLOAT32_MAX:
                    raise GanforgeError(f"{path} line {number}: {field.strip()!r} is not a finite "
                                        "float32 number; remove or fix that row")
                values.append(v)
            rows += 1
            if rows > MAX_POINTS:
                raise GanforgeError(f"{path} has more than {MAX_POINTS:,} points; subsample it "
                                    "(a toy distribution needs far fewer)")
    return values


def load_points_csv(path: str | Path) -> PointDataset:
    """Points from a CSV of two numeric columns, with or without an `x,y` header; blank lines are
    skipped. The points have no mode centres, so they are measured by sliced Wasserstein only."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise GanforgeError(f"{path} {what}; give a CSV file of x,y points")
    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise GanforgeError(f"{path} is {size / 2**20:.0f} MiB, over the {MAX_CSV_BYTES >> 20} MiB "
                            "limit for a points CSV; subsample it")
    try:
        values = _parse_rows(path)
    except UnicodeDecodeError:
        raise GanforgeError(f"{path} is not UTF-8 text; save it as a plain CSV of x,y points") from None
    except OSError as e:
        raise GanforgeError(f"cannot read {path}: {e.strerror or e}; check the file and its permissions") from None
    if len(values) // 2 < MIN_POINTS:
        raise GanforgeError(f"{path} holds {len(values) // 2} point(s); at least {MIN_POINTS} are "
                            "needed to learn or measure a distribution")
    points = torch.from_numpy(np.frombuffer(values, dtype=np.float64).reshape(-1, 2).astype(np.float32))
    return PointDataset(points, str(path))
