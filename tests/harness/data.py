"""Tiny data in MNIST's IDX format, for tests and the record script."""

from __future__ import annotations
import gzip
import struct
from pathlib import Path
import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path
