"""The dataset cache (ganforge.data.cache): hit, miss, stale, damaged, memory-mapped."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import cache, folder, load_dataset
from ganforge.data.folder import load_folder


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """$GANFORGE_DATA for this test alone, so entries from other tests do not count."""
    d = tmp_path / "ganforge-data"
    monkeypatch.setenv("GANFORGE_DATA", str(d))
    return d


@pytest.fixture
def pictures(tmp_path) -> Path:
    """Two classes of 6 small RGB pictures with varied content."""
    root = tmp_path / "pictures"
    rng = np.random.default_rng(0)
    for c in ("cats", "dogs"):
        (root / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


@pytest.fixture
def decodes(monkeypatch) -> list[Path]:
    """Every file the folder loader decodes, in order."""
    seen, real = [], folder.open_image

    def counting(path):
        seen.append(path)
        return real(path)

    monkeypatch.setattr(folder, "open_image", counting)
    return seen


def entries(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "cache").glob("*.json"))


def test_hit_loads_the_same_images_without_decoding(pictures, data_dir, decodes):
    first = load_dataset(str(pictures), resolution=16)
    assert len(decodes) == 12 and len(entries(data_dir)) == 1
    decodes.clear()
    second = load_dataset(str(pictures), resolution=16)
    assert decodes == []
    assert torch.equal(second.images, first.images) and torch.equal(second.labels, first.labels)
    assert second.class_names == ["cats", "dogs"] and second.source == str(pictures)
    # Exactly what decoding in memory gives.
    direct = load_folder(pictures, 16)
    assert torch.equal(second.images, direct.images) and torch.equal(second.labels, direct.labels)


def test_every_load_names_the_skipped_files_once_hit_or_miss(pictures, data_dir, decodes, caplog):
    (pictures / "dogs" / "broken.png").write_bytes(b"not an image")
    for _ in range(2):  # the miss decodes the folder, the hit maps the cache
        caplog.clear()
        with caplog.at_level("WARNING", logger="ganforge"):
            ds = load_dataset(str(pictures), resolution=16)
        warned = [r.getMessage() for r in caplog.records]
        assert len(ds) == 12 and len(warned) == 1, warned
        assert warned[0].startswith("skipped 1 of 13 files") and "broken.png" in warned[0]
    assert len(decodes) == 13  # the hit decoded nothing


def test_resolution_and_channels_are_part_of_the_key(pictures, data_dir, decodes):
    load_dataset(str(pictures), resolution=16)
    load_dataset(str(pictures), resolution=8)
    grey = load_dataset(str(pictures), resolution=16, channels=1)
    assert grey.images.shape == (12, 1, 16, 16)
    assert len(decodes) == 36 and len(entries(data_dir)) == 3


@pytest.mark.parametrize("change", ["touch", "add", "remove"])
def test_changed_folder_is_stale_and_rebuilt(pictures, data_dir, decodes, change):
    load_dataset(str(pictures), resolution=16)
    target = pictures / "dogs" / "0.png"
    if change == "touch":
        st = target.stat()
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    elif change == "add":
        Image.new("RGB", (16, 16), (1, 2, 3)).save(pictures / "dogs" / "new.png")
    else:
        target.unlink()
    decodes.clear()
    ds = load_dataset(str(pictures), resolution=16)
    assert len(decodes) == {"touch": 12, "add": 13, "remove": 11}[change]
    assert len(ds) == len(decodes)
    # The superseded entry is deleted with its pixels: a changed folder does not pile up copies.
    assert len(entries(data_dir)) == 1 and len(list((data_dir / "cache").glob("*.u8"))) == 1


def _truncate(meta: Path, pixels: Path) -> None:
    pixels.write_bytes(pixels.read_bytes()[:-100])


def _grow(meta: Path, pixels: Path) -> None:
    pixels.write_bytes(pixels.read_bytes() + b"\0")


def _bad_json(meta: Path, pixels: Path) -> None:
    meta.write_text(meta.read_text()[:-20])


def _edited_labels(meta: Path, pixels: Path) -> None:
    doc = json.loads(meta.read_text())
    doc["body"]["labels"] = [0] * len(doc["body"]["labels"])
    meta.write_text(json.dumps(doc))


def _no_pixels(meta: Path, pixels: Path) -> None:
    pixels.unlink()


@pytest.mark.parametrize("damage", [_truncate, _grow, _bad_json, _edited_labels, _no_pixels])
def test_damaged_cache_is_rebuilt_never_trusted(pictures, data_dir, decodes, damage, caplog):
    want = load_dataset(str(pictures), resolution=16)
    want_images, want_labels = want.images.clone(), want.labels.clone()
    del want
    (meta,) = entries(data_dir)
    damage(meta, meta.with_suffix(".u8"))
    decodes.clear()
    with caplog.at_level("WARNING", logger="ganforge"):
        ds = load_dataset(str(pictures), resolution=16)
    assert len(decodes) == 12 and "damaged" in caplog.text and "rebuilding" in caplog.text
    assert torch.equal(ds.images, want_images) and torch.equal(ds.labels, want_labels)
    decodes.clear()
    load_dataset(str(pictures), resolution=16)
    assert decodes == []  # the rebuilt entry is used again


def test_images_are_mapped_from_the_cache_file_not_copied(pictures, data_dir):
    load_dataset(str(pictures), resolution=16)
    ds = load_dataset(str(pictures), resolution=16)
    (pixels,) = (data_dir / "cache").glob("*.u8")
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs /proc/self/maps (Linux)")
    address = ds.images.untyped_storage().data_ptr()
    backing = []
    for line in maps.read_text().splitlines():
        fields = line.split(maxsplit=5)
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        if lo <= address < hi:
            backing.append(fields[5] if len(fields) > 5 else "")
    assert backing == [str(pixels.resolve())]
    # The batch gathers from the map; writing to the tensor never reaches the file (copy-on-write).
    before = pixels.read_bytes()
    x, y = ds.batch(torch.tensor([0, 11]))
    assert x.shape == (2, 3, 16, 16) and y.tolist() == [0, 1] and -1 <= x.min() <= x.max() <= 1
    ds.images[0].fill_(7)
    assert pixels.read_bytes() == before


def test_grey_files_become_rgb_when_a_colour_file_follows(tmp_path, data_dir):
    root = tmp_path / "mixed"
    root.mkdir()
    for i in range(3):
        Image.new("L", (12, 12), 40 * i).save(root / f"a{i}.png")
    Image.new("RGB", (12, 12), (200, 10, 10)).save(root / "b.png")
    Image.new("L", (12, 12), 99).save(root / "c.png")
    ds = load_dataset(str(root), resolution=8)
    direct = load_folder(root, 8)
    assert ds.images.shape == (5, 3, 8, 8) and torch.equal(ds.images, direct.images)
    assert ds.images[1, :, 0, 0].tolist() == [40, 40, 40] and ds.images[3, :, 0, 0].tolist() == [200, 10, 10]


def test_unwritable_cache_falls_back_to_memory(pictures, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(cache.os, "access", lambda *a: False)
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "ro"))
    with caplog.at_level("WARNING", logger="ganforge"):
        ds = load_dataset(str(pictures), resolution=16)
    assert len(ds) == 12 and "cannot write the dataset cache" in caplog.text
    assert not list((tmp_path / "ro").rglob("*.u8"))


def test_empty_folder_is_still_an_error_and_leaves_nothing(tmp_path, data_dir):
    root = tmp_path / "empty"
    root.mkdir()
    (root / "notes.txt").write_text("not an image")
    with pytest.raises(Exception, match="no readable images"):
        load_dataset(str(root))
    assert not [p for p in (data_dir / "cache").iterdir()]


@pytest.mark.slow
def test_ten_thousand_images_load_in_well_under_a_second(tmp_path, data_dir):
    """The cache's purpose: a resume does not pay for decoding. 10,000 files, second load timed."""
    root = tmp_path / "many"
    root.mkdir()
    png = Path(tmp_path / "one.png")
    Image.new("L", (28, 28), 128).save(png)
    data = png.read_bytes()
    for i in range(10_000):
        (root / f"{i:05d}.png").write_bytes(data)
    load_dataset(str(root))
    start = time.perf_counter()
    ds = load_dataset(str(root))
    seconds = time.perf_counter() - start
    assert len(ds) == 10_000 and 0 < seconds < 1.0
