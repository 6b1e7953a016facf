"""Exported generators reproduce the original, with or without ganforge installed."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from click.testing import CliRunner

import ganforge
from ganforge.cli import cli
from ganforge.errors import GanforgeError
from ganforge.export import METADATA, export, jit_deprecation_silenced


@pytest.fixture(scope="module")
def gan(tiny_run):
    return ganforge.load(tiny_run)


def inputs(gan, n=5, seed=11):
    return gan.noise(n, seed), torch.tensor([3, 0, 9, 3, 7][:n])


def test_torchscript_export_gives_the_same_images(gan, tmp_path):
    path = export(gan, "torchscript", tmp_path / "g.pt")
    extra = {METADATA + ".json": ""}
    with jit_deprecation_silenced():
        loaded = torch.jit.load(str(path), _extra_files=extra)
    z, y = inputs(gan)
    torch.testing.assert_close(loaded(z, y), gan.generate(z, y), rtol=0, atol=1e-5)
    info = json.loads(extra[METADATA + ".json"])
    assert info["z_dim"] == 8 and info["class_names"][7] == "7" and info["step"] == gan.step


def test_torchscript_export_loads_where_ganforge_cannot_be_imported(gan, tmp_path):
    path = export(gan, "torchscript", tmp_path / "g.pt")
    z, y = inputs(gan)
    torch.save({"z": z, "labels": y}, tmp_path / "inputs.pt")
    code = ("import sys; sys.modules['ganforge'] = None  # any import of ganforge now fails\n"
            "import torch\n"
            f"x = torch.load({str(tmp_path / 'inputs.pt')!r})\n"
            f"torch.save(torch.jit.load({str(path)!r})(x['z'], x['labels']), {str(tmp_path / 'out.pt')!r})\n")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120)
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), gan.generate(z, y), rtol=0, atol=1e-5)


def test_onnx_export_gives_the_same_images(gan, tmp_path):
    path = export(gan, "onnx", tmp_path / "g.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z", "labels"]
    z, y = inputs(gan, 5)
    (images,) = session.run(None, {"z": z.numpy(), "labels": y.numpy()})
    np.testing.assert_allclose(images, gan.generate(z, y).numpy(), rtol=0, atol=1e-5)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta[METADATA])["num_classes"] == 10


def test_unconditional_export_takes_noise_only(tmp_path, tiny_config):
    from ganforge.training import train
    run = train(tiny_config.replace(num_classes=0, conditioning="input", steps=2, sample_every=2, checkpoint_every=2),
                tmp_path / "uncond", progress=False)
    gan = ganforge.load(run)
    z = gan.noise(3, 0)
    with jit_deprecation_silenced():
        loaded = torch.jit.load(str(export(gan, "torchscript", tmp_path / "u.pt")))
    torch.testing.assert_close(loaded(z), gan.generate(z), rtol=0, atol=1e-5)
    session = onnxruntime.InferenceSession(str(export(gan, "onnx", tmp_path / "u.onnx")))
    assert [i.name for i in session.get_inputs()] == ["z"]
    np.testing.assert_allclose(session.run(None, {"z": z.numpy()})[0], gan.generate(z).numpy(), rtol=0, atol=1e-5)


def test_export_keeps_the_latent_bits_step(tmp_path, tiny_config):
    from ganforge.training import train
    run = train(tiny_config.replace(latent_bits=2, steps=2, sample_every=2, checkpoint_every=2),
                tmp_path / "bits", progress=False)
    gan = ganforge.load(run)
    z, y = gan.noise(6, 11), torch.tensor([3, 0, 9, 3, 7, 1])
    z[:3, 0], z[3:, 0] = 1e-6, -1e-6  # both sides of the step
    with jit_deprecation_silenced():
        loaded = torch.jit.load(str(export(gan, "torchscript", tmp_path / "b.pt")))
    torch.testing.assert_close(loaded(z, y), gan.generate(z, y), rtol=0, atol=1e-5)
    session = onnxruntime.InferenceSession(str(export(gan, "onnx", tmp_path / "b.onnx")))
    (images,) = session.run(None, {"z": z.numpy(), "labels": y.numpy()})
    np.testing.assert_allclose(images, gan.generate(z, y).numpy(), rtol=0, atol=1e-5)


def test_export_refuses_an_unknown_format(gan, tmp_path):
    with pytest.raises(GanforgeError, match="unknown export format 'tflite'"):
        export(gan, "tflite", tmp_path / "g.tflite")


def test_export_command(tiny_run, tmp_path):
    out = tmp_path / "digits.onnx"
    r = CliRunner().invoke(cli, ["export", str(tiny_run), "--format", "onnx", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "z float32 (B, 8), labels int64 (B,)" in r.output and out.stat().st_size > 1000
