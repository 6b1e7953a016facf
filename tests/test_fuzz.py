"""Hypothesis fuzzing of the three parsers that read users' files: the IDX reader, the image-folder
loader and the checkpoint loader (as `ganforge.load` and as `--resume`). Any input either loads or
raises GanforgeError; nothing else may escape. Examples are bounded so this stays a few seconds."""

from __future__ import annotations

import gzip
import io
import json
import math
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save as st_save

from ganforge.rundir import RunDir
from ganforge.checkpoint import META_KEY, load_checkpoint
from ganforge.data.folder import load_folder
from ganforge.data.idx import read_idx
from ganforge.errors import GanforgeError
from ganforge.generator import GAN
from ganforge.checkpoint import stored_config
from ganforge.training import Trainer

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")  # fuzzed TIFF tags and EXIF

FUZZ = settings(deadline=None, max_examples=60, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def loads_or_refuses(load, path: Path):
    try:
        return load(path)
    except GanforgeError as e:
        assert str(e) and "\n" not in str(e)
        return None


# -- IDX ---------------------------------------------------------------------------------------
shapes = st.lists(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1)), min_size=0, max_size=6)


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


@settings(FUZZ, max_examples=200)
@given(st.one_of(idx_files(), st.binary(max_size=200)))
def test_fuzz_idx(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f-idx3-ubyte"
        path.write_bytes(data)
        array = loads_or_refuses(read_idx, path)
        if array is not None:
            assert array.dtype == np.uint8 and array.size == math.prod(array.shape)


# -- image folders -----------------------------------------------------------------------------
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


@settings(FUZZ, max_examples=100)
@given(st.lists(st.one_of(image_bytes(), st.binary(max_size=64)), min_size=1, max_size=3),
       st.sampled_from([None, 1, 3]))
def test_fuzz_image_folder(files, channels):
    with tempfile.TemporaryDirectory() as d:
        for i, data in enumerate(files):
            (Path(d) / f"{i}.img").write_bytes(data)
        ds = loads_or_refuses(lambda p: load_folder(p, 8, channels), Path(d))
        if ds is not None:
            assert ds.images.shape[1:] == (channels or ds.images.shape[1], 8, 8)
            assert len(ds) <= len(files)


# -- checkpoints -------------------------------------------------------------------------------
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
              st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)),
    max_leaves=6)


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


@pytest.fixture(scope="module")
def good_checkpoint(tiny_run) -> Path:
    return RunDir(tiny_run).checkpoint()


def test_fuzz_checkpoint_loader(good_checkpoint):
    @FUZZ
    @given(st.one_of(damaged_checkpoints(good_checkpoint), st.binary(max_size=100)))
    def fuzz(data):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "last.safetensors"
            path.write_bytes(data)
            gan = loads_or_refuses(GAN.from_checkpoint, path)
            if gan is not None:
                assert gan.sample(2, seed=0).shape == (2, 1, 28, 28)

    fuzz()


def test_fuzz_resume(good_checkpoint, tiny_run):
    @settings(FUZZ, max_examples=25)
    @given(damaged_checkpoints(good_checkpoint))
    def fuzz(data):
        with tempfile.TemporaryDirectory() as d:
            run = Path(d)
            RunDir(run).checkpoint().parent.mkdir()
            RunDir(run).checkpoint().write_bytes(data)
            try:
                cfg = stored_config(run)
            except GanforgeError:
                return
            loads_or_refuses(lambda r: Trainer(cfg, r, resume=True, progress=False), run)

    fuzz()
