"""The IDX file format of MNIST-family data sets, gzip-compressed or not.

Format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number of
dimensions D, then D big-endian uint32 sizes, then the values in row-major order.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from ganforge.errors import GanforgeError

UBYTE = 0x08
MAX_DIMS = 4
MAX_BYTES = 1 << 31  # 2 GiB of values: far above any MNIST-family file, below a memory blow-up
# Deflate cannot expand data more than 1032-fold, so a .gz claiming more than that (plus slack
# for the gzip framing) cannot hold what its header declares: refused before allocating.
MAX_DEFLATE_RATIO = 1032
READ_CHUNK = 1 << 20  # decompressed straight into the array a chunk at a time: peak ~ the array


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _read_into(f, count: int) -> tuple[np.ndarray, bool]:
    """`count` bytes of `f` read into a new array a chunk at a time (never a second full copy),
    and whether any byte follows them."""
    out = np.empty(count, dtype=np.uint8)
    view, pos = memoryview(out), 0
    while pos < count:
        n = f.readinto(view[pos:pos + READ_CHUNK])
        if not n:
            break
        pos += n
    return out[:pos], bool(f.read(1))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an unsigned-byte IDX file (optionally .gz) into a uint8 array.

    The header is checked before anything large is allocated, and the body must hold exactly the
    number of values the header declares: a truncated, padded or foreign file is a GanforgeError.
    """
    path = Path(path)
    try:
        is_gzip = _is_gzip(path)
        with (gzip.open(path, "rb") if is_gzip else open(path, "rb")) as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise GanforgeError(f"{path} is not an IDX file (bad magic number); "
                                    "expected an MNIST-family file such as train-images-idx3-ubyte.gz")
            if head[2] != UBYTE:
                raise GanforgeError(f"{path} holds IDX type 0x{head[2]:02x}; only unsigned bytes "
                                    "(0x08, as in MNIST) are supported")
            ndim = head[3]
            if not 1 <= ndim <= MAX_DIMS:
                raise GanforgeError(f"{path} declares {ndim} dimensions; expected 1 to {MAX_DIMS}")
            raw_shape = f.read(4 * ndim)
            if len(raw_shape) < 4 * ndim:
                raise GanforgeError(f"{path} is truncated inside its header")
            shape = tuple(int(s) for s in np.frombuffer(raw_shape, dtype=">u4"))
            count = math.prod(shape)  # Python ints: numpy's int64 product wraps for huge headers
            if count > MAX_BYTES:
                raise GanforgeError(f"{path} declares shape {shape}, over {MAX_BYTES} values; "
                                    "the header is corrupt")
            size = path.stat().st_size
            if count > (size * MAX_DEFLATE_RATIO + 1024 if is_gzip else size):
                raise GanforgeError(f"{path} declares shape {shape} ({count} values), more than its "
                                    f"{size} bytes can hold; the file is truncated or corrupt")
            body, trailing = _read_into(f, count)
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise GanforgeError(f"{path} does not exist") from None
        raise GanforgeError(f"cannot read {path}: {e}; the file is damaged, download it again") from None
    if len(body) != count or trailing:
        what = "truncated" if len(body) < count else "longer than its header declares"
        raise GanforgeError(f"{path} is {what} (header shape {shape}, {count} values, "
                            f"found {len(body)}{'+' if trailing else ''}); download it again")
    return body.reshape(shape)
