import gzip
import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from harness.data import write_idx
from ganforge.data import load_dataset, to_float, to_uint8
from ganforge.data import mnist
from ganforge.data.idx import read_idx
from ganforge.errors import GanforgeError


# -- IDX ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "x-idx3-ubyte", a, compress)), a)


@pytest.mark.parametrize("data, message", [
    (b"", "bad magic"),
    (b"\x01\x00\x08\x01", "bad magic"),
    (b"\x00\x00\x0d\x01\x00\x00\x00\x01", "type 0x0d"),
    (b"\x00\x00\x08\x09", "9 dimensions"),
    (b"\x00\x00\x08\x02\x00\x00", "truncated inside its header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "truncated"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x02abc", "longer than its header"),
    (b"\x00\x00\x08\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "header is corrupt"),
])
def test_idx_malformed(tmp_path, data, message):
    p = tmp_path / "bad"
    p.write_bytes(data)
    with pytest.raises(GanforgeError, match=message):
        read_idx(p)


def test_idx_damaged_gzip(tmp_path):
    p = tmp_path / "bad.gz"
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05abcde")[:-12])
    with pytest.raises(GanforgeError, match="bad.gz"):
        read_idx(p)


# -- sources -----------------------------------------------------------------------------------
def test_bundled_digits_are_class_balanced_real_digits():
    ds = load_dataset()
    assert ds.images.shape == (10_000, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert torch.bincount(ds.labels).tolist() == [1000] * 10
    assert ds.class_names == [str(i) for i in range(10)]
    assert 25 < ds.images.float().mean() < 40  # MNIST's mean intensity is about 33


def test_idx_directory_and_batching(tiny_digits):
    ds = load_dataset(str(tiny_digits))
    assert len(ds) == 300 and ds.num_classes == 10
    img, labels = ds.batch(torch.tensor([0, 5, 7]))
    assert img.shape == (3, 1, 28, 28) and img.dtype == torch.float32
    assert -1 <= img.min() and img.max() <= 1
    torch.testing.assert_close(to_uint8(img), ds.images[[0, 5, 7]], rtol=0, atol=0)
    assert labels.tolist() == ds.labels[[0, 5, 7]].tolist()


def test_resize_and_test_split(tiny_digits):
    ds = load_dataset(str(tiny_digits), split="test", resolution=16)
    assert ds.images.shape == (300, 1, 16, 16)


def test_missing_data_errors(tmp_path):
    with pytest.raises(GanforgeError, match="no such directory"):
        load_dataset(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanforgeError, match="no readable images"):
        load_dataset(str(tmp_path / "empty"))


def test_float_uint8_round_trip():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    torch.testing.assert_close(to_uint8(to_float(x)), x, rtol=0, atol=0)


# -- image folders -----------------------------------------------------------------------------
def test_image_folder_classes_modes_and_skips(tmp_path, caplog):
    for cls, mode, color in (("cats", "RGB", (200, 10, 10)), ("dogs", "L", 128)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new(mode, (40 + i, 30), color).save(tmp_path / cls / f"{i}.png")
    Image.new("RGBA", (20, 20)).save(tmp_path / "dogs" / "alpha.png")
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    (tmp_path / "cats" / "empty.png").write_bytes(b"")
    with caplog.at_level("WARNING", logger="ganforge"):
        ds = load_dataset(str(tmp_path), resolution=16)
    assert ds.class_names == ["cats", "dogs"]
    assert ds.images.shape == (7, 3, 16, 16)
    assert torch.bincount(ds.labels).tolist() == [3, 4]
    assert "skipped 2 of 9 files" in caplog.text and "notes.txt" in caplog.text and "empty.png" in caplog.text
    assert ds.images[0, :, 8, 8].tolist() == [200, 10, 10]


def test_flat_grey_folder_is_unconditional(tmp_path):
    for i in range(4):
        Image.new("L", (28, 28), i * 50).save(tmp_path / f"{i}.jpg")
    ds = load_dataset(str(tmp_path))
    assert ds.class_names == [] and ds.images.shape == (4, 1, 28, 28)


# -- download ----------------------------------------------------------------------------------
@pytest.fixture
def mirror(tmp_path, tiny_digits):
    """A local HTTP server holding the tiny digits as a fake MNIST mirror (no network)."""
    root = tmp_path / "mirror"
    root.mkdir()
    for f in tiny_digits.iterdir():
        (root / f.name).write_bytes(f.read_bytes())
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_download_verifies_and_caches(tmp_path, mirror, monkeypatch):
    root, url = mirror
    md5 = {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in root.iterdir()}
    monkeypatch.setitem(mnist.FAMILIES, "mnist", mnist.Family((url,), md5, tuple("0123456789")))
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "cache"))
    ds = load_dataset("mnist")
    assert len(ds) == 300 and ds.source == "mnist"
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


def test_download_rejects_bad_checksum_and_leaves_nothing(tmp_path, mirror, monkeypatch):
    root, url = mirror
    md5 = {f.name: "0" * 32 for f in root.iterdir()}
    monkeypatch.setitem(mnist.FAMILIES, "mnist", mnist.Family((url,), md5, tuple("0123456789")))
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "cache"))
    with pytest.raises(GanforgeError, match="MD5"):
        load_dataset("mnist")
    assert list((tmp_path / "cache" / "mnist").iterdir()) == []


def test_offline_error_names_the_directory(tmp_path, monkeypatch):
    fam = mnist.FAMILIES["kmnist"]
    monkeypatch.setitem(mnist.FAMILIES, "kmnist", mnist.Family(("http://127.0.0.1:9/",), fam.md5, fam.class_names))
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "cache"))
    with pytest.raises(GanforgeError, match=str(tmp_path / "cache" / "kmnist")):
        load_dataset("kmnist")
