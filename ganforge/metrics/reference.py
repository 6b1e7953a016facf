"""Reference sets: the features samples are compared with.

`"mnist-test"` is the bundled one: the 64-d features of the 10,000 MNIST test digits, stored as
float16 (1.3 MB) with their labels, and their mean and covariance in float64 computed before
rounding. The whole feature set ships, not just the Gaussian statistics, because precision/recall,
density/coverage and KID need the individual reference points, not only their mean and covariance.

Any other reference is a path: a directory of MNIST-family IDX files (the test split if present,
else train), a directory of images (`<label>_<index>.png` as `ganforge generate` writes, or one
sub-folder per class), or an `.npz` with `images` (and optional `labels`); its features are
computed on the fly.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from ganforge.data.folder import load_folder, open_image, printable
from ganforge.data.mnist import file_names, find_idx, load_idx_dir
from ganforge.errors import GanforgeError
from ganforge.generator import MAX_SAMPLES
from ganforge.metrics.features import ASSETS, CLASSIFIER_PATH, RESOLUTION, embed
from ganforge.metrics.scores import real_radii

MNIST_TEST = "mnist-test"
MNIST_TEST_PATH = ASSETS / "mnist_test_features.safetensors"
DIGIT_ACCURACY = 0.9  # a labelled reference the classifier reads this well holds digits
SAMPLE_NAME = re.compile(r"^(\d+)_\d+\.png$", re.IGNORECASE)
MAX_LABEL = 9_999  # as many classes as a model may have (config: num_classes <= 10000)
MAX_NPZ_BYTES = 1 << 30  # of images in an .npz: checked in its header, before anything is read


@dataclass
class Reference:
    name: str
    features: torch.Tensor  # float32 (N, 64)
    labels: torch.Tensor | None  # int64 (N,), or None when the reference has no labels
    mean: np.ndarray  # float64 (64,)
    cov: np.ndarray  # float64 (64, 64)
    digits: bool  # holds digits, so the classifier's class predictions mean something
    _manifolds: dict = field(default_factory=dict, repr=False)

    def manifold(self, n: int, seed: int = 0) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """n reference features drawn without replacement (all when n >= N) and their k-NN radii,
        cached per n. k-NN metrics compare sets of equal size, as their papers do, because the
        radii shrink as a set grows."""
        n = min(n, len(self.features))
        if n not in self._manifolds:
            gen = torch.Generator().manual_seed(seed)
            real = self.features[torch.randperm(len(self.features), generator=gen)[:n]]
            self._manifolds[n] = real, real_radii(real)
        return self._manifolds[n]


def mean_cov(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    f = features.double().numpy()
    if len(f) < 2:
        raise GanforgeError(f"need at least 2 images for a covariance (got {len(f)})")
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def load_reference(spec: str | Reference = MNIST_TEST) -> Reference:
    """The reference named by `spec` (see the module docstring); an instance passes through."""
    if isinstance(spec, Reference):
        return spec
    if spec == MNIST_TEST:
        return _mnist_test()
    path = Path(spec).expanduser()
    if not path.exists():
        raise GanforgeError(f"--reference {spec}: no such file or directory; use {MNIST_TEST} or a "
                            "directory of MNIST-format IDX files or images")
    return _cached_path_reference(str(path.resolve()))


@functools.lru_cache(maxsize=1)
def _mnist_test() -> Reference:
    try:
        with safe_open(MNIST_TEST_PATH, "pt") as f:
            meta = json.loads((f.metadata() or {}).get("ganforge", "{}"))
            t = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, SafetensorError) as e:
        raise GanforgeError(f"cannot read {MNIST_TEST_PATH} ({e}); reinstall ganforge") from None
    if meta.get("classifier_sha256") != hashlib.sha256(CLASSIFIER_PATH.read_bytes()).hexdigest():
        raise GanforgeError(f"{MNIST_TEST_PATH} was computed with another classifier; rerun "
                            "scripts/train_digit_classifier.py")
    return Reference(MNIST_TEST, t["features"].float(), t["labels"].long(), t["mean"].numpy(),
                     t["cov"].numpy(), digits=True)


@functools.lru_cache(maxsize=4)
def _cached_path_reference(path: str) -> Reference:
    images, labels = load_images(Path(path), prefer_split="test")
    features, probs = embed(images)
    mean, cov = mean_cov(features)
    digits = labels is not None and (probs.argmax(1) == labels).float().mean().item() >= DIGIT_ACCURACY
    return Reference(path, features, labels, mean, cov, digits)


def load_images(path: Path, prefer_split: str = "train",
                resolution: int = RESOLUTION) -> tuple[torch.Tensor, torch.Tensor | None]:
    """uint8 images (N, C, H, W) and int64 labels (or None) from an .npz file, a directory of IDX
    files, a directory of `<label>_<index>.png` files, or an image folder (loaded at `resolution`;
    the others keep their own size)."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise GanforgeError(f"{path}: expected an .npz file (from 'ganforge generate --out X.npz'), "
                                "a run directory or a directory of images")
        return _load_npz(path)
    if not path.is_dir():
        raise GanforgeError(f"{path}: not a file or a directory; give an .npz file, a run directory "
                            "or a directory of images")
    for split in dict.fromkeys([prefer_split, "test", "train"]):
        if find_idx(path, file_names(split)[0]) is not None:
            ds = load_idx_dir(path, split)
            return ds.images, ds.labels
    pngs = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".png")
    if pngs and all(SAMPLE_NAME.match(p.name) for p in pngs):
        return _load_pngs(pngs)
    ds = load_folder(path, resolution)
    return ds.images, (ds.labels if ds.class_names else None)


def _npz_header(zf: zipfile.ZipFile, name: str) -> tuple[tuple[int, ...], np.dtype] | None:
    """Shape and dtype of array `name` in an open .npz, from its .npy header alone."""
    if f"{name}.npy" not in zf.namelist():
        return None
    with zf.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    return shape, dtype


def _load_npz(path: Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images (and labels) of an .npz. Shapes and dtypes are checked in the headers before any
    array is read, so a small file declaring a huge array allocates nothing; other arrays in the
    file are never read."""
    try:
        with zipfile.ZipFile(path) as zf:
            images_head, labels_head = _npz_header(zf, "images"), _npz_header(zf, "labels")
            if images_head is None:
                raise GanforgeError(f"{path} has no 'images' array (it has {', '.join(zf.namelist()) or 'nothing'}); "
                                    "write one with 'ganforge generate RUN --out FILE.npz'")
            shape, dtype = images_head
            if dtype != np.uint8:
                raise GanforgeError(f"{path}: images must be uint8 in 0..255 (got {dtype})")
            if len(shape) not in (3, 4) or not 0 < shape[0] <= MAX_SAMPLES or math.prod(shape) > MAX_NPZ_BYTES:
                raise GanforgeError(f"{path}: images must be (N, H, W) or (N, C, H, W) with 0 < N <= "
                                    f"{MAX_SAMPLES} and at most {MAX_NPZ_BYTES} bytes (got {shape})")
            if labels_head is not None and (labels_head[0] != shape[:1] or labels_head[1].kind not in "iu"):
                raise GanforgeError(f"{path}: labels must be {shape[0]} integers (got {labels_head[1]} "
                                    f"{labels_head[0]})")
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], (z["labels"] if labels_head is not None else None)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise GanforgeError(f"cannot read {path}: {e}; write it with 'ganforge generate RUN --out FILE.npz'") from None
    if images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    if labels is not None:
        labels = torch.from_numpy(labels.astype(np.int64))
    images = torch.from_numpy(np.ascontiguousarray(images))
    return (images.unsqueeze(1) if images.ndim == 3 else images), labels


def _load_pngs(pngs: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    arrays, labels = [], []
    for p in pngs:
        label = int(SAMPLE_NAME.match(p.name).group(1))
        if label > MAX_LABEL:
            raise GanforgeError(f"{printable(p)}: label {label} is over {MAX_LABEL}; name files <label>_<index>.png "
                                f"with a class label in 0..{MAX_LABEL}")
        try:  # open_image refuses decompression bombs before decoding them
            with open_image(p) as img:
                a = np.asarray(img.convert("L" if img.mode in ("1", "L", "LA", "P") else "RGB"))
        except (OSError, ValueError) as e:
            raise GanforgeError(f"cannot read {printable(p)}: {e}; it is not a usable image") from None
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
        labels.append(label)
    if len({a.shape for a in arrays}) > 1:
        raise GanforgeError(f"the images in {pngs[0].parent} differ in size or mode; they must all match")
    return torch.from_numpy(np.stack(arrays)), torch.tensor(labels)
