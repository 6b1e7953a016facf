"""Data sources. Every one yields an `ImageDataset`: uint8 images in memory, labels, class names.

`load_dataset(spec)` understands:
- `"digits"`: the bundled class-balanced subset of MNIST training digits (offline);
- `"mnist"`, `"fashion-mnist"`, `"kmnist"`: the cache directory, downloading when missing;
- a directory holding IDX files (`train-images-idx3-ubyte[.gz]` and labels);
- any other directory: an image folder (see `ganforge.data.folder`), decoded once into the
  memory-mapped dataset cache (see `ganforge.data.cache`);
- `"ring8"`, `"grid25"`, `"spiral"`, `"moons"` or a `.csv` file: 2-D points, a `PointDataset`
  (see `ganforge.data.toy`).
"""

from __future__ import annotations

from pathlib import Path

from ganforge.data.dataset import ImageDataset, resize, to_float, to_grey, to_uint8
from ganforge.data.cache import load_cached
from ganforge.data.mnist import FAMILIES, SPLITS, file_names, find_idx, load_family, load_idx_dir
from ganforge.data.toy import TOY_SOURCES, PointDataset, load_points
from ganforge.errors import GanforgeError

BUNDLED = "digits"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "digits"

__all__ = ["ImageDataset", "PointDataset", "is_points", "load_dataset", "resize", "to_float", "to_grey", "to_uint8", "BUNDLED", "BUNDLED_DIR"]


def is_points(spec: str | None) -> bool:
    """Whether `spec` names 2-D points (a toy source or a .csv file) rather than images."""
    return spec in TOY_SOURCES or (spec is not None and spec.lower().endswith(".csv"))


def load_dataset(spec: str | None = None, split: str = "train", resolution: int | None = None,
                 channels: int | None = None) -> ImageDataset | PointDataset:
    """Load the data set named by `spec` (see module docstring); optionally resize it (images)."""
    if split not in SPLITS:
        raise GanforgeError(f"split must be one of {', '.join(SPLITS)} (got {split!r})")
    if is_points(spec):
        return load_points(spec)  # one fixed sample: there is no test split of a toy source
    spec = spec or BUNDLED
    if spec == BUNDLED:
        if split != "train":
            raise GanforgeError("the bundled digits hold a training split only; use --data mnist "
                                "for the test split")
        ds = load_idx_dir(BUNDLED_DIR, "train", [str(i) for i in range(10)])
        ds.source = BUNDLED
    elif spec in FAMILIES:
        ds = load_family(spec, split)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise GanforgeError(f"--data {spec}: no such directory, and not one of "
                                f"{', '.join([BUNDLED, *FAMILIES])}")
        if not path.is_dir():
            raise GanforgeError(f"--data {spec} is a file; give the directory that holds it")
        if find_idx(path, file_names(split)[0]) is not None:
            ds = load_idx_dir(path, split)
        else:
            ds = load_cached(path, resolution or 28, channels)
    if channels is not None and channels != ds.img_channels:
        if ds.img_channels == 1:
            ds = ImageDataset(ds.images.expand(-1, channels, -1, -1).contiguous(), ds.labels,
                              ds.class_names, ds.source)
        else:
            ds = ImageDataset(to_grey(ds.images), ds.labels, ds.class_names, ds.source)
    if resolution:
        ds = ImageDataset(resize(ds.images, resolution), ds.labels, ds.class_names, ds.source)
    return ds
