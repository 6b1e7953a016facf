"""The CLI end to end, as a user runs it: real subprocesses, exit codes, one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest


def ganforge(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ganforge", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


TINY = ["--width", "16", "--z-dim", "8", "--batch-size", "32", "--quiet", "--device", "cpu"]


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_train_generate_end_to_end(tmp_path, tiny_digits):
    run = tmp_path / "run"
    r = ganforge("train", "--data", tiny_digits, "--out", run, "--steps", 4, "--sample-every", 2, *TINY)
    assert r.returncode == 0, r.stderr
    assert "samples" in r.stdout and (run / "samples" / "step-000004.png").exists()
    r = ganforge("generate", run, "--n", 10, "--classes", "all", "--seed", 1, "--out", tmp_path / "a.npz")
    assert r.returncode == 0, r.stderr
    r = ganforge("generate", run, "--n", 10, "--seed", 1, "--out", tmp_path / "b.npz")
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(a["images"], b["images"])
    assert a["labels"].tolist() == list(range(10))
    r = ganforge("train", "--resume", run, "--steps", 6)
    assert r.returncode == 0, r.stderr


def test_dry_run_prints_resolved_config(tiny_digits, tmp_path):
    r = ganforge("train", "--data", tiny_digits, "--dry-run", "--lr-g", "0.001", "--steps", 3,
                 "--out", tmp_path / "never")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["config"]["lr_g"] == 0.001 and out["config"]["steps"] == 3
    assert out["config"]["minutes"] is None  # a budget flag replaces the preset's budget
    assert out["config"]["model"]["num_classes"] == 10 and out["images"] == 300
    assert not (tmp_path / "never").exists()


def test_tutorial_preset_runs(tiny_digits, tmp_path):
    r = ganforge("train", "--preset", "tutorial", "--data", tiny_digits, "--out", tmp_path / "t",
                 "--steps", 2, "--quiet")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "t" / "samples" / "step-000002.png").exists()


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_digits):
    run = tmp_path_factory.mktemp("cli") / "run"
    assert ganforge("train", "--data", tiny_digits, "--out", run, "--steps", 2, *TINY).returncode == 0
    return run


def test_errors_are_one_line(run, tmp_path, tiny_digits):
    assert_one_line_error(ganforge("train", "--data", tmp_path / "missing", "--out", tmp_path / "x"),
                          "missing", "no such directory")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(ganforge("train", "--data", tmp_path / "empty", "--out", tmp_path / "x"), "no readable images")
    assert_one_line_error(ganforge("train", "--data", tiny_digits, "--batch-size", 0, "--out", tmp_path / "x"), "batch_size")
    assert_one_line_error(ganforge("train", "--data", tiny_digits, "--lr-g", "-1", "--out", tmp_path / "x"), "lr_g")
    assert_one_line_error(ganforge("generate", run, "--n", 5, "--classes", "11", "--out", tmp_path / "g.png"),
                          "class 11")
    assert_one_line_error(ganforge("generate", run, "--n", 0, "--out", tmp_path / "g.png"), "--n")
    assert_one_line_error(ganforge("generate", tmp_path / "nothing", "--out", tmp_path / "g.png"), "does not exist")
    assert_one_line_error(ganforge("generate", run, "--out", tmp_path / "g.jpg"), ".png", ".npz")
    assert_one_line_error(ganforge("train", "--resume", run, "--lr-g", "0.1"), "--lr-g", "resuming")
    assert not (tmp_path / "x").exists()


def test_existing_run_and_damaged_checkpoint(run, tmp_path, tiny_digits):
    ckpt = run / "checkpoints" / "last.safetensors"
    before = ckpt.read_bytes()
    assert_one_line_error(ganforge("train", "--data", tiny_digits, "--out", run, *TINY), "already holds a run")
    assert ckpt.read_bytes() == before
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(before[: len(before) // 2])
    assert_one_line_error(ganforge("generate", damaged, "--out", tmp_path / "g.png"), "not a readable")
    foreign = tmp_path / "pickle.safetensors"
    foreign.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    assert_one_line_error(ganforge("generate", foreign, "--out", tmp_path / "g.png"), "not a readable")


def test_unconditional_model_refuses_classes(tmp_path, tiny_digits):
    run = tmp_path / "u"
    assert ganforge("train", "--data", tiny_digits, "--out", run, "--steps", 1, "--unconditional", *TINY).returncode == 0
    assert_one_line_error(ganforge("generate", run, "--classes", "3", "--out", tmp_path / "g.png"), "unconditional")
    assert ganforge("generate", run, "--n", 4, "--out", tmp_path / "g.png").returncode == 0
