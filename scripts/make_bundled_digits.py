"""Build ganforge/assets/digits/: a class-balanced subset of the official MNIST training digits.

    python scripts/make_bundled_digits.py [--mnist ../shared/data/mnist] [--per-class 1000]

The official files are checked against the MD5 sums published for the uncompressed IDX files
(http://yann.lecun.com/exdb/mnist/) before use. The subset takes the first `--per-class`
training digits of each class in file order, so it is reproducible, and writes them as IDX
files (gzip, mtime 0 for byte-identical output), the format ganforge reads for MNIST anyway.
MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges, CC BY-SA 3.0.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ganforge.data.idx import read_idx  # noqa: E402

RAW_MD5 = {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
           "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624"}


def raw_bytes(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    ap.add_argument("--per-class", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "ganforge" / "assets" / "digits")
    args = ap.parse_args()

    arrays = {}
    for stem, md5 in RAW_MD5.items():
        path = next(p for p in (args.mnist / f"{stem}.gz", args.mnist / stem) if p.exists())
        got = hashlib.md5(raw_bytes(path)).hexdigest()
        if got != md5:
            sys.exit(f"error: {path} has MD5 {got}, expected the published {md5}")
        arrays[stem] = read_idx(path)
    images, labels = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[: args.per_class] for c in range(10)]))

    args.out.mkdir(parents=True, exist_ok=True)
    for stem, array in (("train-images-idx3-ubyte", images[keep]), ("train-labels-idx1-ubyte", labels[keep])):
        with open(args.out / f"{stem}.gz", "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
            gz.write(idx_bytes(array))
    print(f"wrote {len(keep)} digits ({args.per_class} per class) to {args.out}")


if __name__ == "__main__":
    main()
