"""Hypothesis fuzzing of the three parsers that read users' files: the IDX reader, the image-folder
loader and the checkpoint loader (as `ganforge.load` and as `--resume`). Any input either loads or
raises GanforgeError; nothing else may escape. Examples are bounded so this stays a few seconds."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ganforge.rundir import RunDir
from ganforge.data.folder import load_folder
from ganforge.data.idx import read_idx
from ganforge.errors import GanforgeError
from ganforge.generator import GAN
from ganforge.checkpoint import stored_config
from ganforge.training import Trainer
from harness.fuzz import FUZZ, damaged_checkpoints, idx_files, image_bytes

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")  # fuzzed TIFF tags and EXIF



def loads_or_refuses(load, path: Path):
    try:
        return load(path)
    except GanforgeError as e:
        assert str(e) and "\n" not in str(e)
        return None


# -- IDX ---------------------------------------------------------------------------------------




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
