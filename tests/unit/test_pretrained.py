"""The pretrained digit model: the word `pretrained` wherever a run is, the slim float16 asset, and
the file that ships."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import torch
from click.testing import CliRunner

import ganforge
from ganforge import rundir
from ganforge.checkpoint import load_checkpoint
from ganforge.cli import cli
from ganforge.rundir import PRETRAINED

ROOT = Path(__file__).resolve().parents[2]


def write_asset(run: Path, out: Path, base: Path | None = None) -> None:
    spec = importlib.util.spec_from_file_location("train_pretrained", ROOT / "scripts" / "train_pretrained.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_asset(run, out, base)


def test_slim_float16_asset_samples_like_its_run(tiny_run, tmp_path):
    write_asset(tiny_run, tmp_path / "slim.safetensors")
    slim, full = ganforge.load(tmp_path / "slim.safetensors"), ganforge.load(tiny_run)
    assert slim.class_names == full.class_names and slim.step == full.step
    a, b = slim.generate(slim.noise(8, 0), torch.arange(8)), full.generate(full.noise(8, 0), torch.arange(8))
    torch.testing.assert_close(a, b, atol=2e-2, rtol=0)  # float16 storage, float32 compute
    assert (tmp_path / "slim.safetensors").stat().st_size < (tiny_run / "checkpoints" / "last.safetensors").stat().st_size


def test_a_finale_asset_counts_both_phases_and_names_no_local_path(tiny_run, tmp_path):
    write_asset(tiny_run, tmp_path / "slim.safetensors", base=tiny_run)  # the run stands in for both phases
    _, meta = load_checkpoint(tmp_path / "slim.safetensors")
    _, run_meta = load_checkpoint(tiny_run / "checkpoints" / "last.safetensors")
    assert meta["step"] == 2 * run_meta["step"] and meta["elapsed_s"] == 2 * run_meta["elapsed_s"]
    assert meta["config"]["init_from"] is None and meta["config"]["data"] == "mnist"
    assert f"{run_meta['step']} steps of the default preset, then {run_meta['step']} steps" in meta["recipe"]


def test_the_word_pretrained_is_the_shipped_model(tiny_run, tmp_path, monkeypatch):
    write_asset(tiny_run, tmp_path / "slim.safetensors")
    monkeypatch.setattr(rundir, "PRETRAINED", tmp_path / "slim.safetensors")
    monkeypatch.chdir(tmp_path)
    assert ganforge.load("pretrained").class_names == [str(c) for c in range(10)]
    r = CliRunner().invoke(cli, ["generate", "pretrained", "--n", "10", "--out", "g.png"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "g.png").is_file()
    r = CliRunner().invoke(cli, ["evaluate", "pretrained", "--n", "100", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["source"] == "pretrained"
    r = CliRunner().invoke(cli, ["export", "pretrained", "--format", "torchscript", "--out", "g.pt"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "g.pt").is_file()


def test_a_directory_named_pretrained_wins_with_a_note(tiny_run, tmp_path, monkeypatch, caplog):
    import shutil
    shutil.copytree(tiny_run, tmp_path / "pretrained")
    monkeypatch.setattr(rundir, "PRETRAINED", tmp_path / "nowhere.safetensors")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        gan = ganforge.load("pretrained")
    assert gan.path == Path("pretrained") / "checkpoints" / "last.safetensors"
    assert "'pretrained' is a directory here" in caplog.text


def test_the_shipped_model_is_small_and_complete():
    assert PRETRAINED.is_file(), "ganforge/assets/pretrained.safetensors is missing: run scripts/train_pretrained.py"
    assert PRETRAINED.stat().st_size <= 4 << 20
    gan = ganforge.load(PRETRAINED)
    assert gan.class_names == [str(c) for c in range(10)] and gan.model.img_resolution == 28
    images = gan.sample(20, labels=list(range(10)) * 2, seed=0)
    assert images.shape == (20, 1, 28, 28) and images.float().std() > 10  # not blank


def test_the_model_card_block_and_grid_are_written_and_rewritten(tiny_run, tmp_path):
    spec = importlib.util.spec_from_file_location("train_pretrained", ROOT / "scripts" / "train_pretrained.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_asset(tiny_run, tmp_path / "slim.safetensors")
    card = tmp_path / "card.md"
    card.write_text(f"# Card\n\nprose before\n\n{module.CARD_BEGIN}\nold figures\n{module.CARD_END}\n\nprose after\n")
    result = {"fid": 1.5, "kid": 0.02, "kid_std": 0.01, "precision": 0.5, "recall": 0.25, "density": 0.7,
              "coverage": 0.6, "class_accuracy": 0.9, "classes_covered": 10, "class_kl": 0.001, "digit_score": 8.0}
    module.write_card(ganforge.load(tmp_path / "slim.safetensors"), result, "a machine, yardstick 99 GFLOP/s", "python x.py",
                      card=card, grid=tmp_path / "grid.png")
    text = card.read_text()
    assert "old figures" not in text and "prose before" in text and "prose after" in text
    assert "| recall | 0.250 |" in text and "| class accuracy | 0.9000 |" in text and "yardstick 99 GFLOP/s" in text
    assert text.count(module.CARD_BEGIN) == 1
    from PIL import Image
    assert Image.open(tmp_path / "grid.png").size[0] > 28 * 5  # a grid, ten to a row
