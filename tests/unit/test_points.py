"""2-D points everywhere data is: loading, the toy preset and net, training, checkpoints,
generate/evaluate on a toy run, and strict JSON in metrics.jsonl."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from ganforge.config import PRESETS, preset, preset_for
from ganforge.data import PointDataset, is_points, load_dataset
from ganforge.errors import GanforgeError
from ganforge.generator import GAN
from ganforge.points import csv_bytes, sample_points, scatter
from ganforge.rundir import RunDir
from ganforge.training import resolve, train

TINY = dict(width=16, z_dim=4, batch_size=32, steps=6, minutes=None, log_every=2, sample_every=3,
            checkpoint_every=3, eval_every=3, device="cpu")


def ganforge(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ganforge", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def strict_json(line: str):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")
    return json.loads(line, parse_constant=refuse)


def write_csv(path, header: bool, n: int = 200):
    rows = torch.randn(n, 2, generator=torch.Generator().manual_seed(0)).tolist()
    path.write_text(("x,y\n" if header else "") + "".join(f"{x},{y}\n" for x, y in rows))
    return path


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "ring"
    train(preset_for("default", True).replace(data="ring8", **TINY), run, progress=False)
    return run


def test_point_specs_load_points(tmp_path):
    assert is_points("ring8") and is_points("a/b.CSV") and not is_points("digits") and not is_points(None)
    ring = load_dataset("ring8")
    assert isinstance(ring, PointDataset) and ring.centres.shape == (8, 2)
    csv = load_dataset(str(write_csv(tmp_path / "p.csv", header=False)))
    assert csv.points.shape == (200, 2) and csv.centres is None


def test_points_pick_the_toy_model_and_keep_the_presets_game():
    assert preset_for("default", True) == preset("toy")
    assert preset_for("default", False) == preset("default")
    tutorial = preset_for("tutorial", True)
    assert tutorial.model.net == "toy" and tutorial.model.width == PRESETS["toy"]["width"]
    assert (tutorial.loss, tutorial.lr_g, tutorial.batch_size) == ("bce", 1e-5, 128)


def test_points_and_images_refuse_the_other_kind_of_net(tiny_digits):
    with pytest.raises(GanforgeError, match="need net 'toy'"):
        resolve(preset("default").replace(data="ring8"))
    with pytest.raises(GanforgeError, match="holds images"):
        resolve(preset("toy").replace(data=str(tiny_digits)))
    with pytest.raises(GanforgeError, match="unconditional"):
        resolve(preset("toy").replace(data="ring8", num_classes=3))


def test_toy_nets_shapes():
    from ganforge.nets import build_discriminator, build_generator
    cfg = preset("toy").replace(width=8, z_dim=3).model
    G, D = build_generator(cfg), build_discriminator(cfg)
    points = G(torch.randn(5, 3))
    assert points.shape == (5, 2)
    logits, class_logits = D(points)
    assert logits.shape == (5,) and class_logits is None
    # No BatchNorm: each point's score and G's push on it depend on that point alone.
    alone = torch.cat([D(points[i:i + 1])[0] for i in range(5)])
    assert_close(logits, alone, rtol=1e-5, atol=1e-5)


def test_toy_run_files_metrics_and_round_trip(toy_run):
    run = RunDir(toy_run)
    with Image.open(run.sample(3)) as img:  # progress plots are scatter PNGs
        assert img.size[0] == img.size[1] >= 100
    assert run.class_sheet.exists() and run.loss_plot.exists()
    evals = [strict_json(line)["eval"] for line in run.metrics.read_text().splitlines() if '"eval"' in line]
    assert len(evals) == 2
    assert set(evals[0]) == {"swd", "modes_covered", "num_modes", "high_quality", "mode_kl"}
    assert evals[0]["num_modes"] == 8 and 0 <= evals[0]["high_quality"] <= 1
    # The checkpoint rebuilds the pair from the file alone and draws the same points.
    gan = GAN.from_checkpoint(toy_run)
    assert gan.model.points and gan.step == 6
    a, b = sample_points(gan, 50, seed=1), sample_points(GAN.from_checkpoint(toy_run), 50, seed=1)
    assert a.dtype == torch.float32 and a.shape == (50, 2)
    assert_close(a, b, rtol=0, atol=0)


def test_undefined_measures_are_written_as_null(tmp_path, monkeypatch):
    # No sample near a mode makes the mode KL NaN; metrics.jsonl must stay strict JSON.
    from ganforge.training import evaluation
    monkeypatch.setattr("ganforge.metrics.toy.toy_metrics",
                        lambda samples, data: {"swd": 1.0, "modes_covered": 0, "num_modes": 8,
                                               "high_quality": 0.0, "mode_kl": math.nan, "mode_counts": [0] * 8})
    run = tmp_path / "run"
    train(preset("toy").replace(data="ring8", **{**TINY, "steps": 3}), run, progress=False)
    records = [strict_json(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"swd": 1.0, "modes_covered": 0, "num_modes": 8, "high_quality": 0.0, "mode_kl": None} in \
        [r.get("eval") for r in records]
    assert evaluation.EVAL_SAMPLES > 0


def test_scatter_and_csv():
    points = torch.tensor([[0.0, 0.0], [1.0, -1.0], [float("nan"), 0.0], [50.0, 50.0]])
    img = scatter(points, reference=torch.tensor([[2.0, 2.0], [-2.0, -2.0]]), size=101)
    arr = np.asarray(img)
    assert img.size == (101, 101) and (arr != 255).any()  # NaN and off-view points are skipped
    text = csv_bytes(points[:2]).decode().splitlines()
    assert text[0] == "x,y" and [float(v) for v in text[1].split(",")] == [0.0, 0.0]


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.slow
def test_cli_trains_on_a_csv_and_writes_points(tmp_path, header):
    csv, run = write_csv(tmp_path / "p.csv", header), tmp_path / "run"
    r = ganforge("train", "--data", csv, "--out", run, "--steps", 4, "--width", 8, "--batch-size", 32,
                 "--quiet", "--eval-every", 2)
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "config.json").read_text())["config"]["model"]["net"] == "toy"
    if not header:
        return  # the rest is the same for both
    for name in ("pts.npz", "pts.csv", "pts.png"):
        r = ganforge("generate", run, "--n", 30, "--out", tmp_path / name)
        assert r.returncode == 0, r.stderr
    points = np.load(tmp_path / "pts.npz")["points"]
    assert points.dtype == np.float32 and points.shape == (30, 2)
    from_csv = np.loadtxt(tmp_path / "pts.csv", delimiter=",", skiprows=1, dtype=np.float32)
    np.testing.assert_allclose(from_csv, points, rtol=1e-6, atol=0)
    r = ganforge("evaluate", run, "--n", 500, "--reference", "ring8", "--json")
    assert r.returncode == 0, r.stderr
    result = strict_json(r.stdout.strip().splitlines()[-1])
    assert result["num_modes"] == 8 and result["reference"] == "ring8" and result["swd"] > 0
    assert "modes_covered" in r.stdout and "  fid " not in r.stdout
    r = ganforge("generate", run, "--out", tmp_path / "pts.gif")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert not (tmp_path / "pts.gif").exists()
    r = ganforge("generate", run, "--classes", "1", "--out", tmp_path / "x.npz")
    assert r.returncode == 2 and "no classes" in r.stderr


def test_cli_refuses_a_bad_points_csv(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n3,oops\n")
    r = ganforge("train", "--data", bad, "--out", tmp_path / "run", "--steps", 2, "--quiet")
    assert r.returncode == 2 and "line 3" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args", [("report",), ("interpolate", "--out", "x.gif"), ("export", "--format", "torchscript", "--out", "x.pt"),
                                  ("serve", "--port", "0")])
def test_image_commands_refuse_a_points_run(toy_run, tmp_path, args):
    r = ganforge(args[0], toy_run, *args[1:], cwd=tmp_path)
    assert r.returncode == 2 and "2-D points" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_the_api_draws_points_not_images_from_a_points_model(toy_run, tmp_path):
    from ganforge.export import export
    from ganforge.generator import load
    gan = load(toy_run)
    with pytest.raises(GanforgeError, match="2-D points, not of images.*sample_points"):
        gan.sample(4)
    assert sample_points(gan, 4, 0).shape == (4, 2)
    import zipfile
    export(gan, "torchscript", tmp_path / "g.pt")
    with zipfile.ZipFile(tmp_path / "g.pt") as zf:
        info = json.loads(next(zf.read(n) for n in zf.namelist() if n.endswith("ganforge.json")))
    assert info["output"] == "float32 2-D points (B, 2)" and "img_resolution" not in info


def test_a_points_csv_the_system_cannot_read_is_one_error(tmp_path, monkeypatch):
    import errno
    from ganforge.data import toy
    path = write_csv(tmp_path / "p.csv", header=True)
    monkeypatch.setattr(toy, "_parse_rows", lambda p: (_ for _ in ()).throw(OSError(errno.EIO, "Input/output error")))
    with pytest.raises(GanforgeError, match="cannot read .*p.csv: Input/output error"):
        toy.load_points_csv(path)


def test_a_points_checkpoint_naming_a_folder_of_images_does_not_have_it_read(toy_run, tmp_path, monkeypatch):
    # A checkpoint may come from anyone: evaluate and generate compare with the data it names only
    # when that is 2-D points, so it cannot have ganforge decode and cache a folder of pictures.
    from ganforge.checkpoint import load_checkpoint, save_checkpoint
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "cache"))
    (tmp_path / "pictures" / "a").mkdir(parents=True)
    Image.new("L", (28, 28), 255).save(tmp_path / "pictures" / "a" / "one.png")
    tensors, meta = load_checkpoint(RunDir(toy_run).checkpoint())
    meta["config"]["data"] = str(tmp_path / "pictures")
    save_checkpoint(tmp_path / "named.safetensors", tensors, meta)
    r = ganforge("evaluate", tmp_path / "named.safetensors", "--n", 100)
    assert r.returncode == 2 and "is not 2-D points" in r.stderr and "--reference" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = ganforge("generate", tmp_path / "named.safetensors", "--n", 10, "--out", tmp_path / "p.png")
    assert r.returncode == 0 and "plot shows the samples alone" in r.stderr and (tmp_path / "p.png").is_file()
    assert not (tmp_path / "cache").exists()
