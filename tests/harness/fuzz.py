"""Hypothesis strategies for fuzzing the loaders, shared by the tests and the record script."""

from __future__ import annotations
import gzip
import io
import json
import math
import struct
from pathlib import Path
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save as st_save
from ganforge.checkpoint import META_KEY, load_checkpoint


FUZZ = settings(deadline=None, max_examples=60, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


shapes = st.lists(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1)), min_size=0, max_size=6)

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
              st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)),
    max_leaves=6)


@st.composite
def idx_files(draw) -> bytes:
    shape = draw(shapes)
    head = bytes([0, 0, draw(st.sampled_from([0x08, 0x08, 0x09, 0x0D])), len(shape)])
    head += struct.pack(f">{len(shape)}I", *shape)
    count = math.prod(shape) if math.prod(shape) < 4096 else draw(st.integers(0, 64))
    body = bytes(draw(st.sampled_from([count, count, max(count - 1, 0), count + 1])))
    data = head + body
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    data = data[:cut] if cut is not None else data
    return gzip.compress(data) if draw(st.booleans()) else data


def encoded(mode: str, fmt: str, w: int, h: int) -> bytes:
    img = Image.fromarray(np.arange(w * h * 3, dtype=np.uint8).reshape(h, w, 3)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@st.composite
def image_bytes(draw) -> bytes:
    mode, fmt = draw(st.sampled_from([("RGB", "PNG"), ("L", "JPEG"), ("P", "GIF"), ("RGBA", "WEBP"),
                                      ("1", "BMP"), ("CMYK", "TIFF"), ("LA", "PNG")]))
    data = bytearray(encoded(mode, fmt, draw(st.integers(1, 12)), draw(st.integers(1, 12))))
    for _ in range(draw(st.integers(0, 4))):  # flip bytes, mostly in the header
        i = draw(st.integers(0, min(len(data), 64) - 1))
        data[i] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    return bytes(data[:cut] if cut is not None else data)


@st.composite
def damaged_checkpoints(draw, path: Path) -> bytes:
    """A real checkpoint with its bytes flipped or cut, one metadata field replaced, or one tensor
    of another dtype or shape."""
    good = path.read_bytes()
    kind = draw(st.sampled_from(["bytes", "metadata", "tensor"]))
    if kind == "bytes":
        data = bytearray(good)
        n = int.from_bytes(good[:8], "little")
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, n + 8 - 1))  # in the length field or the JSON header
            data[i] = draw(st.integers(0, 255))
        cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
        return bytes(data[:cut] if cut is not None else data)
    tensors, meta = load_checkpoint(path)
    if kind == "metadata":
        where = draw(st.sampled_from(["top", "config", "model", "opt"]))
        target = {"top": meta, "config": meta["config"], "model": meta["config"]["model"],
                  "opt": meta["opt_d"]}[where]
        key = draw(st.sampled_from(sorted(target) + ["extra"]))
        target[key] = draw(json_values)
    else:
        name = draw(st.sampled_from(sorted(tensors)))
        t = tensors[name]
        tensors[name] = draw(st.sampled_from([t.double(), t.int(), t.flatten(), t.flatten()[:1], t.bool()]))
    return st_save(tensors, metadata={META_KEY: json.dumps(meta)})
