"""Tiny data in MNIST's IDX format and as image folders, for tests and the record script."""

from __future__ import annotations
import gzip
import os
import struct
from pathlib import Path
import numpy as np
from PIL import Image


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def image_folder(root: Path, classes: list[str | bytes], per_class: int = 3) -> Path:
    """A folder of random 12x12 grey PNGs, one sub-folder per class (names may be raw bytes)."""
    rng = np.random.default_rng(0)
    for name in classes:
        d = os.path.join(os.fsencode(root), name if isinstance(name, bytes) else name.encode())
        os.makedirs(d)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(os.path.join(d, b"%d.png" % i))
    return root
