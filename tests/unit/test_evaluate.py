"""`ganforge evaluate` on runs, .npz files and image directories; `ganforge report`; and the
evaluation hook of the training loop."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganforge.cli import cli
from ganforge.rundir import RunDir
from ganforge.training import train

KEYS = {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "digit_score",
        "classes_covered", "class_kl"}


@pytest.fixture(autouse=True)
def _small_evaluations(monkeypatch):
    from ganforge.metrics import scores
    from ganforge.training import evaluation
    monkeypatch.setattr(scores, "KID_SUBSETS", 10)
    monkeypatch.setattr(evaluation, "EVAL_SAMPLES", 500)


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_evaluate_an_npz_of_real_digits(tmp_path, bundled_arrays):
    images, labels = bundled_arrays
    np.savez(tmp_path / "real.npz", images=images[:500], labels=labels[:500].astype(np.int64))
    result = _invoke("evaluate", tmp_path / "real.npz", "--json")
    assert result.exit_code == 0, result.output
    assert "fid" in result.output and "per class" in result.output
    r = _last_json(result.output)
    assert KEYS | {"class_accuracy", "per_class_fid", "per_class_accuracy"} <= set(r)
    assert r["n"] == 500 and r["notes"] == []
    assert 0 <= r["fid"] < 3 and r["class_accuracy"] > 0.97


@pytest.mark.slow
def test_evaluate_a_run_and_its_png_directory(tiny_run, tmp_path):
    result = _invoke("evaluate", tiny_run, "--n", 200, "--json")
    assert result.exit_code == 0, result.output
    r = _last_json(result.output)
    assert KEYS | {"class_accuracy", "per_class_fid"} <= set(r) and r["n"] == 200
    assert r["fid"] > 5  # six training steps make noise, not digits
    assert 0 <= r["precision"] <= 1 and 1 <= r["classes_covered"] <= 10

    assert _invoke("generate", tiny_run, "--n", 50, "--out", tmp_path / "pngs").exit_code == 0
    result = _invoke("evaluate", tmp_path / "pngs", "--json")
    assert result.exit_code == 0, result.output
    r = _last_json(result.output)
    assert r["n"] == 50 and "class_accuracy" in r


def test_evaluate_against_a_reference_directory(tmp_path, bundled_arrays, tiny_digits):
    images, labels = bundled_arrays
    pick = np.arange(31, len(images), len(images) // 300)[:300]  # 30 per class, spread over the file
    rgb = np.repeat(images[pick, :, :, None], 3, axis=3)  # (N, H, W, 3): grey digits as RGB
    np.savez(tmp_path / "rgb.npz", images=rgb, labels=labels[pick].astype(np.int64))
    result = _invoke("evaluate", tmp_path / "rgb.npz", "--reference", tiny_digits, "--json")
    assert result.exit_code == 0, result.output
    r = _last_json(result.output)
    assert r["reference"] == str(tiny_digits) and 0 < r["fid"] < 10 and r["class_accuracy"] > 0.95
    assert len(r["notes"]) == 1 and "28x28" in r["notes"][0]  # RGB is flagged; the reference is digits


def test_evaluate_bad_input_is_one_line_and_exit_2(tmp_path):
    result = _invoke("evaluate", tmp_path / "missing.npz")
    assert result.exit_code == 2 and result.output.startswith("error: ")
    np.savez(tmp_path / "wrong.npz", pixels=np.zeros((3, 28, 28), np.uint8))
    result = _invoke("evaluate", tmp_path / "wrong.npz")
    assert result.exit_code == 2 and "no 'images' array" in result.output


def test_report_draws_curves_and_a_class_sheet(tiny_run, tmp_path):
    out = tmp_path / "report.png"
    result = _invoke("report", tiny_run, "--out", out)
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.width >= 640 and img.height > 3 * 360


@pytest.mark.slow
def test_training_writes_eval_records_and_a_best_checkpoint(tiny_config, tmp_path):
    run = tmp_path / "run"
    train(tiny_config.replace(eval_every=3), run, progress=False)
    evals = [r for r in RunDir(run).read_metrics() if "eval" in r]
    assert [r["step"] for r in evals] == [3, 6]
    for r in evals:
        assert {"fid", "precision", "recall", "class_accuracy"} <= set(r["eval"])
        assert math.isfinite(r["eval"]["fid"]) and r["eval"]["fid"] > 0
    assert RunDir(run).checkpoint("best").is_file() and RunDir(run).checkpoint("last").is_file()
    best_step = min(evals, key=lambda r: r["eval"]["fid"])["step"]
    from ganforge.checkpoint import load_checkpoint
    assert load_checkpoint(RunDir(run).checkpoint("best"))[1]["step"] == best_step
    # A roll-back or resume to step 0 drops the records after it; the best checkpoint still
    # knows its score, so a worse model cannot replace it.
    from ganforge.training.evaluation import best_score
    best_fid = min(r["eval"]["fid"] for r in evals)
    assert best_score(RunDir(run), "fid") == pytest.approx(best_fid, abs=1e-5)  # records round to 5 places
    RunDir(run).drop_metrics_after(0)
    assert not [r for r in RunDir(run).read_metrics() if "eval" in r]
    assert best_score(RunDir(run), "fid") == pytest.approx(best_fid, abs=1e-5)  # records round to 5 places


@pytest.mark.slow
def test_training_skips_evaluation_of_non_digit_data(tiny_config, tmp_path, caplog):
    folder = tmp_path / "colour"
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(20):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / c / f"{i}.png")
    cfg = tiny_config.replace(data=str(folder), img_resolution=16, batch_size=8, eval_every=3)
    with caplog.at_level("WARNING", logger="ganforge"):
        train(cfg, tmp_path / "run", progress=False)
    assert "evaluation is off" in caplog.text
    assert not any("eval" in r for r in RunDir(tmp_path / "run").read_metrics())
    assert not RunDir(tmp_path / "run").checkpoint("best").exists()


@pytest.mark.parametrize("name, every", [("tutorial", 0), ("default", 2000)])
def test_presets_choose_the_evaluation_cadence(name, every):
    from ganforge.config import preset
    assert preset(name).eval_every == every


def test_in_training_evaluation_warns_when_one_class_is_made(tiny_config, tiny_digits, tmp_path, caplog):
    # A generator that draws real ones whatever it is asked: the classifier sees one class, and the
    # class-coverage half of the mode-collapse warning fires.
    from ganforge.data import load_dataset, to_float
    from ganforge.generator import GAN
    from ganforge.rundir import RunDir
    from ganforge.training.evaluation import InTrainingEval

    data = load_dataset(str(tiny_digits))
    ones = to_float(data.images[data.labels == 1])

    class OnlyOnes(torch.nn.Module):
        def forward(self, z, labels):
            return ones[torch.arange(len(z)) % len(ones)]

    cfg = tiny_config.replace(num_classes=10, eval_every=1)
    gan = GAN(OnlyOnes(), torch.nn.Identity(), cfg.model, data.class_names)
    (tmp_path / "run").mkdir()
    evaluation = InTrainingEval(cfg, RunDir(tmp_path / "run"), 10, rank=0, world=1)
    with caplog.at_level("WARNING", logger="ganforge"):
        evaluation(gan, step=7, device=torch.device("cpu"))
    assert "possible mode collapse at step 7: samples cover 1 of 10 classes" in caplog.text
    (record,) = RunDir(tmp_path / "run").read_metrics()
    assert record["eval"]["classes_covered"] == 1


def test_a_hostile_best_score_is_ignored_not_a_crash(tiny_run, tmp_path):
    import shutil
    from ganforge.checkpoint import load_checkpoint
    from ganforge.training.evaluation import best_score
    from harness.hostile import rewrite
    run = RunDir(shutil.copytree(tiny_run, tmp_path / "run"))
    tensors, meta = load_checkpoint(run.checkpoint())
    for stored, expected in ((0.5, 0.5), (10**400, math.inf), (-5.0, math.inf), ("low", math.inf), (True, math.inf)):
        run.checkpoint("best").write_bytes(rewrite(tensors, {**meta, "best_score": {"fid": stored}}))
        assert best_score(run, "fid") == expected, stored
    with open(run.metrics, "a") as f:  # the fallback reads metrics.jsonl: a huge integer there too
        f.write(json.dumps({"step": 1, "eval": {"fid": 10**400}}) + "\n" + json.dumps({"step": 2, "eval": {"fid": 3}}) + "\n")
    assert best_score(run, "fid") == 3.0
