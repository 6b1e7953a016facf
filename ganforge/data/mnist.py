"""MNIST-family data sets (MNIST, Fashion-MNIST, KMNIST): IDX files from a directory or a
download cache.

The cache is `$GANFORGE_DATA/<name>/` (default `~/.cache/ganforge/<name>/`). Missing files are
downloaded from the public mirrors, checked against their published MD5 and written atomically
(temporary file, then rename), so an interrupted download never leaves a half file behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganforge.data.dataset import ImageDataset
from ganforge.data.idx import read_idx
from ganforge.errors import GanforgeError

SPLITS = {"train": "train", "test": "t10k"}
DIGITS = [str(i) for i in range(10)]


@dataclass(frozen=True)
class Family:
    mirrors: tuple[str, ...]
    md5: dict[str, str]  # of the .gz files as served by the mirrors (torchvision's table)
    class_names: tuple[str, ...]


FAMILIES: dict[str, Family] = {
    "mnist": Family(
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/"),
        md5={"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
             "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
             "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        class_names=tuple(DIGITS)),
    "fashion-mnist": Family(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
             "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
             "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
             "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                     "Sneaker", "Bag", "Ankle boot")),
    "kmnist": Family(
        mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        md5={"train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
             "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
             "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
             "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134"},
        class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")),
}

DOWNLOAD_TIMEOUT_S = 30


def cache_dir() -> Path:
    return Path(os.environ.get("GANFORGE_DATA") or Path.home() / ".cache" / "ganforge")


def file_names(split: str) -> tuple[str, str]:
    prefix = SPLITS[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    return None


def load_idx_dir(directory: Path, split: str, class_names: list[str] | None = None) -> ImageDataset:
    """Images and labels of `split` from IDX files in `directory` (plain or .gz)."""
    images_stem, labels_stem = file_names(split)
    images_path, labels_path = find_idx(directory, images_stem), find_idx(directory, labels_stem)
    if images_path is None or labels_path is None:
        missing = images_stem if images_path is None else labels_stem
        raise GanforgeError(f"{directory} has no {missing}[.gz]; put the {split} split's IDX "
                            "files there")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise GanforgeError(f"{images_path} holds shape {images.shape}; expected (N, H, W) images")
    if labels.ndim != 1 or len(labels) != len(images):
        raise GanforgeError(f"{labels_path} holds {labels.shape} labels for {len(images)} images in "
                            f"{images_path}; the files do not belong together")
    if class_names is None:
        class_names = [str(i) for i in range(int(labels.max()) + 1)] if len(labels) else []
    return ImageDataset(torch.from_numpy(images).unsqueeze(1),
                        torch.from_numpy(labels.astype(np.int64)), list(class_names),
                        source=str(directory))


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: Path, md5: str) -> None:
    """Fetch `url` to `dest` atomically, keeping it only if its MD5 matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                out.write(chunk)
        got = md5_of(Path(tmp))
        if got != md5:
            raise GanforgeError(f"{url} has MD5 {got}, expected {md5}; the mirror served a "
                                "damaged or different file")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def ensure_family(name: str, split: str) -> Path:
    """The cache directory of family `name`, with `split`'s files downloaded if missing."""
    family = FAMILIES[name]
    directory = cache_dir() / name
    for stem in file_names(split):
        if find_idx(directory, stem) is not None:
            continue
        gz = stem + ".gz"
        errors = []
        for mirror in family.mirrors:
            try:
                download(mirror + gz, directory / gz, family.md5[gz])
                break
            except GanforgeError as e:
                errors.append(str(e))
            except (OSError, urllib.error.URLError) as e:  # offline, DNS, HTTP errors, timeouts
                errors.append(f"{mirror + gz}: {getattr(e, 'reason', e)}")
        else:
            raise GanforgeError(f"cannot download {name} file {gz} ({'; '.join(errors)}); "
                                f"put the four IDX files in {directory} (or set GANFORGE_DATA)")
    return directory


def load_family(name: str, split: str) -> ImageDataset:
    dataset = load_idx_dir(ensure_family(name, split), split, list(FAMILIES[name].class_names))
    dataset.source = name
    return dataset
