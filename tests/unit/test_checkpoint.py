import json

import pytest
import torch
from safetensors.torch import save_file

from ganforge.checkpoint import load_checkpoint, save_checkpoint
from ganforge.files import atomic_write
from ganforge.errors import GanforgeError


def test_round_trip_is_bit_exact(tmp_path):
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5), "c": torch.tensor([1.5], dtype=torch.float64)}
    save_checkpoint(tmp_path / "x.safetensors", tensors, {"step": 7, "nested": {"k": [1, 2]}})
    loaded, meta = load_checkpoint(tmp_path / "x.safetensors")
    assert meta["step"] == 7 and meta["nested"] == {"k": [1, 2]}
    for k, v in tensors.items():
        assert torch.equal(loaded[k], v) and loaded[k].dtype == v.dtype


def test_truncated_and_foreign_files_are_clear_errors(tmp_path):
    path = tmp_path / "x.safetensors"
    save_checkpoint(path, {"a": torch.randn(100)}, {"step": 1})
    data = path.read_bytes()
    for cut in (0, 4, 8, 50, len(data) - 10):
        (tmp_path / "cut.safetensors").write_bytes(data[:cut])
        with pytest.raises(GanforgeError, match="not a readable ganforge checkpoint"):
            load_checkpoint(tmp_path / "cut.safetensors")
    save_file({"w": torch.zeros(2)}, tmp_path / "foreign.safetensors")
    with pytest.raises(GanforgeError, match="not a ganforge checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors")
    (tmp_path / "text.safetensors").write_text(json.dumps({"hello": 1}))
    with pytest.raises(GanforgeError):
        load_checkpoint(tmp_path / "text.safetensors")


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    atomic_write(path, b"old")

    def boom(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", boom)
    with pytest.raises(GanforgeError, match="No space left.*previous file is intact"):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temporary left behind
