"""Shared fixtures: tiny data and tiny runs, so the whole suite stays fast on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.config import preset
from ganforge.data import BUNDLED_DIR
from ganforge.data.idx import read_idx
from harness.data import write_idx




@pytest.fixture(scope="session")
def bundled_arrays() -> tuple[np.ndarray, np.ndarray]:
    return (read_idx(BUNDLED_DIR / "train-images-idx3-ubyte.gz"),
            read_idx(BUNDLED_DIR / "train-labels-idx1-ubyte.gz"))


@pytest.fixture(scope="session")
def tiny_digits(tmp_path_factory, bundled_arrays) -> Path:
    """A directory of MNIST-format IDX files: 30 real digits per class (300), train and test."""
    images, labels = bundled_arrays
    keep = np.concatenate([np.flatnonzero(labels == c)[:30] for c in range(10)])
    d = tmp_path_factory.mktemp("tiny_digits")
    for split in ("train", "t10k"):
        write_idx(d / f"{split}-images-idx3-ubyte.gz", images[keep])
        write_idx(d / f"{split}-labels-idx1-ubyte.gz", labels[keep])
    return d


@pytest.fixture
def tiny_config(tiny_digits):
    """The default preset, shrunk: the cheapest net (test_nets and test_menu cover the others),
    small batches, a few steps."""
    return preset("default").replace(data=str(tiny_digits), net="mlp", width=16, z_dim=8, batch_size=32,
                                     steps=6, minutes=None, log_every=2, sample_every=3,
                                     checkpoint_every=3, device="cpu")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_digits) -> Path:
    """A finished tiny conditional run (read-only: copy it before changing it)."""
    from ganforge.training import train

    cfg = preset("default").replace(data=str(tiny_digits), net="mlp", width=16, z_dim=8, batch_size=32, steps=6,
                                    minutes=None, log_every=2, sample_every=3, checkpoint_every=3,
                                    device="cpu", ema=0.9)
    run = tmp_path_factory.mktemp("runs") / "tiny"
    train(cfg, run, progress=False)
    return run


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _data_cache_in_tmp(monkeypatch, tmp_path_factory):
    """Image folders are cached under $GANFORGE_DATA (ganforge.data.cache): never the user's own."""
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path_factory.getbasetemp() / "ganforge-data"))
