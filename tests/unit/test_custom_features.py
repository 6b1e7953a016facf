"""`ganforge evaluate --features FILE`: figures on a feature network the user supplies
(ganforge.metrics.custom_features), with a tiny network made here."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganforge.cli import cli
from ganforge.data import resize, to_float
from ganforge.metrics import scores
from ganforge.metrics.custom_features import label, load_extractor
from ganforge.metrics.reference import mean_cov

SIZE = 16  # the tiny network's declared input side


@pytest.fixture(autouse=True)
def _few_kid_subsets(monkeypatch):
    monkeypatch.setattr(scores, "KID_SUBSETS", 5)


class TinyFeatures(torch.nn.Module):
    """(N, 1, 16, 16) in [-1, 1] -> (N, 6)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 6, 5, stride=2, padding=2)
        self.fc = torch.nn.Linear(6 * 8 * 8, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


@pytest.fixture(scope="module")
def tiny_pt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("features") / "tiny.pt"
    traced = torch.jit.trace(TinyFeatures().eval(), torch.zeros(2, 1, SIZE, SIZE))
    torch.jit.save(traced, str(path), _extra_files={"ganforge.json": json.dumps({"input_size": SIZE, "channels": 1})})
    return path


@pytest.fixture(scope="module")
def digit_sets(tmp_path_factory, bundled_arrays) -> dict[str, Path]:
    """A reference folder of 40 real digits (classes 0-3, one sub-folder each), an .npz of 40 other
    real digits of those classes, and an .npz of 40 noise images."""
    images, labels = bundled_arrays
    root = tmp_path_factory.mktemp("digit_sets")
    picked = {c: np.flatnonzero(labels == c) for c in range(4)}
    for c, idx in picked.items():
        (root / "ref" / str(c)).mkdir(parents=True)
        for i in idx[:10]:
            Image.fromarray(images[i]).save(root / "ref" / str(c) / f"{i}.png")
    other = np.concatenate([idx[10:20] for idx in picked.values()])
    np.savez(root / "real.npz", images=images[other], labels=labels[other].astype(np.int64))
    noise = np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8)
    np.savez(root / "noise.npz", images=noise)
    return {"ref": root / "ref", "real": root / "real.npz", "noise": root / "noise.npz"}


def _evaluate(*args):
    return CliRunner().invoke(cli, ["evaluate", *[str(a) for a in args]])


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_figures_on_a_torchscript_feature_file(tiny_pt, digit_sets):
    result = _evaluate(digit_sets["real"], "--features", tiny_pt, "--reference", digit_sets["ref"], "--json")
    r = _json(result)
    assert r["features"] == "tiny"
    assert {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "per_class_fid"} <= set(r)
    assert not {"digit_score", "class_accuracy"} & set(r)  # those are digit-classifier figures
    table = result.output
    assert "FID[tiny]" in table and "KID[tiny]" in table and "precision[tiny]" in table
    assert "[digits]" not in table and "note: features from" in table

    # The figures are those of the network run on the images resized to 16x16 in [-1, 1].
    net = TinyFeatures().eval()
    with np.load(digit_sets["real"]) as z:
        samples = torch.from_numpy(z["images"]).unsqueeze(1)
    ref = torch.from_numpy(np.stack([np.asarray(Image.open(p)) for p in sorted(digit_sets["ref"].rglob("*.png"),
                                                                               key=lambda p: (p.parent.name, p.name))]))
    with torch.no_grad():
        f_s, f_r = (net(to_float(resize(x, SIZE))) for x in (samples, ref.unsqueeze(1)))
    want = scores.frechet_distance(*mean_cov(f_s), *mean_cov(f_r))
    assert want > 0
    assert r["fid"] == pytest.approx(want, rel=1e-4, abs=1e-6)

    noise = _json(_evaluate(digit_sets["noise"], "--features", tiny_pt, "--reference", digit_sets["ref"], "--json"))
    assert noise["fid"] > 3 * r["fid"] and noise["coverage"] < r["coverage"]


@pytest.mark.slow
def test_a_run_on_a_feature_file(tiny_run, tiny_pt, digit_sets):
    r = _json(_evaluate(tiny_run, "--n", 60, "--features", tiny_pt, "--reference", digit_sets["ref"], "--json"))
    assert r["n"] == 60 and r["features"] == "tiny" and np.isfinite(r["fid"]) and r["fid"] > 0


def test_onnx_feature_file_gives_the_torchscript_figures(tiny_pt, digit_sets, tmp_path):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "tiny.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(TinyFeatures().eval(), torch.zeros(2, 1, SIZE, SIZE), str(path), input_names=["x"],
                          dynamic_axes={"x": {0: "n"}}, dynamo=False)
    extractor = load_extractor(path)
    assert (extractor.size, extractor.channels, extractor.name) == (SIZE, 1, "tiny")  # read from the graph
    args = [digit_sets["real"], "--reference", digit_sets["ref"], "--json"]
    onnx, ts = _json(_evaluate(*args, "--features", path)), _json(_evaluate(*args, "--features", tiny_pt))
    assert onnx["features"] == "tiny"
    for key in ("fid", "precision", "recall", "density", "coverage"):
        assert onnx[key] == pytest.approx(ts[key], rel=1e-3, abs=1e-5), key


def test_undeclared_size_needs_features_size(tmp_path, digit_sets):
    path = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(TinyFeatures().eval()), str(path))
    result = _evaluate(digit_sets["real"], "--features", path, "--reference", digit_sets["ref"])
    assert result.exit_code == 2 and "--features-size" in result.output
    r = _json(_evaluate(digit_sets["real"], "--features", path, "--features-size", SIZE,
                        "--reference", digit_sets["ref"], "--json"))
    assert r["features"] == "plain" and r["fid"] > 0


class WrongShape(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(1)  # (N, H, W): not vectors


@pytest.mark.parametrize("case,message", [
    ("garbage.pt", "not a readable TorchScript file"),
    ("garbage.onnx", "not a readable ONNX model"),
    ("model.pkl", "expected a TorchScript .pt or an ONNX .onnx file"),
    ("missing.pt", "no such file"),
    ("wrong_shape.pt", "one vector per image"),
    ("mnist_reference", "--features needs --reference DIR"),
    ("size_alone", "give --features FILE too"),
    ("size_zero", "must be an integer in [1, 2048]"),
])
def test_bad_feature_files_are_one_line(case, message, tmp_path, tiny_pt, digit_sets):
    path = tmp_path / case
    extra = ["--reference", digit_sets["ref"]]
    if case.startswith("garbage") or case == "model.pkl":
        path.write_bytes(b"\x80\x04not a model at all")
    elif case == "wrong_shape.pt":
        torch.jit.save(torch.jit.script(WrongShape()), str(path), _extra_files={"ganforge.json": '{"input_size": 8}'})
    elif case == "mnist_reference":
        path, extra = tiny_pt, []
    elif case.startswith("size"):
        path = tiny_pt
        extra += ["--features-size", 0 if case == "size_zero" else 8]
    args = [digit_sets["real"], *extra] + ([] if case == "size_alone" else ["--features", path])
    result = _evaluate(*args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1 and message in result.output


def test_digit_figures_are_named_for_their_features(digit_sets):
    result = _evaluate(digit_sets["real"], "--json")
    r = _json(result)
    assert r["features"] == "digits" and "fid" in r  # JSON keys unchanged
    assert "FID[digits]" in result.output and "KID[digits]" in result.output and "coverage[digits]" in result.output
    assert "digit_score " in result.output  # classifier figures keep their names
    assert label("fid", "inception") == "FID[inception]" and label("class_accuracy") == "class_accuracy"


def test_the_documented_inception_recipe_is_valid_python():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    recipe = [b for b in blocks if "inception_v3" in b]
    assert len(recipe) == 1 and "torch.jit.trace" in recipe[0] and "299" in recipe[0]
    compile(recipe[0], "docs/metrics.md", "exec")
